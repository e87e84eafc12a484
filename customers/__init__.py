"""Customer accounts and their service requests; the customer portal's pages.

Public face: ``services`` (writes), ``selectors`` (reads), ``phones`` (number
normalisation).
"""
