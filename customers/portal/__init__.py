"""The customer portal (top layer: it reads metering and billing as well as customers).

* :mod:`.views` — the pages: home, usage, forecast, profile, requests, the field agent,
  messages; :mod:`.urls` maps them under ``/portal/``.
* :mod:`.usage` — consumption by day and by month beside the period before.
* :mod:`.forecast` — this month's bill (or prepaid spend) forecast.
* :mod:`.inbox` — the messages sent to the customer.

Signing in (phone and PIN, or a code by SMS) is :mod:`notifications.selfservice.portal_auth`;
the money pages are :mod:`billing.collections.portal`. See docs/portal.md.
"""

from customers.portal.views import home

__all__ = ["home"]
