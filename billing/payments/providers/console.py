"""A provider for development: every request is paid at once, locally, and logged.

``make run`` works offline with it (``PAYMENT_BACKEND=console``): a request-to-pay
completes as though the customer approved it on their phone straight away.
"""

from __future__ import annotations

from billing.payments.providers.base import (
    SUCCESSFUL,
    Callback,
    Outcome,
    Provider,
    Started,
    log,
)


class ConsoleProvider(Provider):
    """Pays every request in full; ``method`` is the provider it stands in for."""

    def __init__(self, method: str = "console", **kwargs) -> None:
        self.method = method
        self.base_url = ""
        self.timeout = 0

    def request_payment(self, request) -> Started:
        log.info(
            "console %s: asked %s for %s %s (request %s); paid at once",
            self.method,
            request.phone or "checkout",
            request.amount + request.fee,
            request.currency,
            request.reference,
        )
        redirect = (
            "" if request.phone else f"/payments/return/?OrderMerchantReference={request.reference}"
        )
        return Started(
            provider_ref=f"CONSOLE-{request.reference.hex[:12].upper()}",
            redirect_url=redirect,
            state=SUCCESSFUL,
        )

    def status(self, request) -> Outcome:
        return Outcome(
            state=SUCCESSFUL,
            provider_txn_id=f"CONSOLE-{request.reference.hex[:12].upper()}",
            amount=request.amount + request.fee,
            currency=request.currency,
            account=str(request.reference),
        )

    def parse_callback(self, body: bytes, query: dict) -> Callback:
        return Callback(reference=str(query.get("reference", "")))
