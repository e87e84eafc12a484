"""Self-service for feature phones: the USSD menu and inbound SMS commands.

See docs/ussd.md.
"""
