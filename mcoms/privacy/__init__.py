"""Personal data on request and on closure: subject access archives and anonymisation.

A top-layer package: it asks each app for its part (``<app>/personal_data.py``) and
never touches another app's tables itself. See docs/personal-data.md.
"""
