"""Steering the grid: relay commands under policy, the Calin head-end, prepaid token vending.

Metering's steering rules are the only way to a relay. Billing and collections say *why*
(arrears, exhausted credit, a payment); :func:`metering.steering.services.submit` decides
*whether and how*. See docs/steering.md.
"""
