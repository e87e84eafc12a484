"""Security: sign-in limits and lockouts, two-factor sign-in, API throttles, headers.

The design is written down in docs/security.md. This app sits just above
``mcoms.core`` (it imports nothing else of ours), so every channel — the staff
pages, the API, the customer portal, USSD — can use its limits.
"""
