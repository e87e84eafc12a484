"""Tariffs, service packages, billing runs, invoices, ledger, payments, collections.

Public face: ``services`` (writes), ``selectors`` (reads).
"""
