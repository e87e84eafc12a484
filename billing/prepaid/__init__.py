"""Prepaid accounts: account credit drawn down by consumption, and meter tokens.

See docs/prepaid.md.
"""
