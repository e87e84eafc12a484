"""Airtel Money collections (the contract is from third-party code: read defensively).

``POST /auth/oauth2/token`` gives a bearer token; ``POST /merchant/v1/payments/`` with
``X-Country``/``X-Currency`` pushes a payment prompt, ``transaction.id`` being our
unique id (the request's reference); ``GET /standard/v1/payments/{id}`` answers
``data.transaction.status``: ``TS`` succeeded, ``TF`` failed, ``TIP`` in progress,
``TA`` ambiguous (keep asking; held for review if it never settles).
"""

from __future__ import annotations

import json
import uuid

from django.conf import settings

from billing.payments.providers.base import (
    FAILED,
    PENDING,
    SUCCESSFUL,
    UNKNOWN,
    Callback,
    Outcome,
    Provider,
    ProviderRefused,
    ProviderUnavailable,
    Started,
    money,
)

STATES = {"TS": SUCCESSFUL, "TF": FAILED, "TIP": PENDING, "TA": PENDING}
AMBIGUOUS = "TA"


def national(phone: str) -> str:
    """The number without its country code, as Airtel wants it: +256701234567 → 701234567."""
    digits = phone.lstrip("+")
    return digits[3:] if digits.startswith("256") else digits.lstrip("0")


def txn_id(request) -> str:
    """Our id for the request at Airtel: the reference without dashes."""
    return request.reference.hex


class AirtelMoney(Provider):
    method = "airtel"
    base_url_setting = "AIRTEL_BASE_URL"

    def _token(self) -> str:
        def fetch():
            response = self._call(
                "POST",
                "/auth/oauth2/token",
                json={
                    "client_id": settings.AIRTEL_CLIENT_ID,
                    "client_secret": settings.AIRTEL_CLIENT_SECRET,
                    "grant_type": "client_credentials",
                },
            )
            if response.status_code != 200:
                raise ProviderRefused(f"airtel: token refused (HTTP {response.status_code})")
            data = self._json(response)
            if not data.get("access_token"):
                raise ProviderUnavailable("airtel: token answer without access_token")
            return data["access_token"], data.get("expires_in", 180)

        return self._cached_token(fetch)

    def _headers(self, currency: str) -> dict:
        return {
            "Authorization": f"Bearer {self._token()}",
            "X-Country": settings.AIRTEL_COUNTRY,
            "X-Currency": currency,
            "Accept": "*/*",
        }

    def _authorised(self, method: str, path: str, currency: str, **kwargs):
        response = self._call(method, path, headers=self._headers(currency), **kwargs)
        if response.status_code == 401:
            self._forget_token()
            response = self._call(method, path, headers=self._headers(currency), **kwargs)
        return response

    def request_payment(self, request) -> Started:
        total = request.amount + request.fee
        body = {
            "reference": f"Account {request.customer.account_number}"[:64],
            "subscriber": {
                "country": settings.AIRTEL_COUNTRY,
                "currency": request.currency,
                "msisdn": national(request.phone),
            },
            "transaction": {
                "amount": format(total.normalize(), "f"),
                "country": settings.AIRTEL_COUNTRY,
                "currency": request.currency,
                "id": txn_id(request),
            },
        }
        response = self._authorised("POST", "/merchant/v1/payments/", request.currency, json=body)
        data = self._json(response) if response.status_code == 200 else {}
        status = data.get("status") or {}
        if response.status_code == 200 and status.get("success") in (True, "true", "True"):
            return Started()
        message = status.get("message") or response.text[:200]
        raise ProviderRefused(f"airtel: request refused (HTTP {response.status_code}) {message}")

    def status(self, request) -> Outcome:
        response = self._authorised(
            "GET", f"/standard/v1/payments/{txn_id(request)}", request.currency
        )
        if response.status_code == 404:
            return Outcome(state=UNKNOWN, reason="Airtel has no such transaction")
        if response.status_code != 200:
            raise ProviderUnavailable(f"airtel: status HTTP {response.status_code}")
        data = self._json(response)
        transaction = (data.get("data") or {}).get("transaction") or {}
        code = str(transaction.get("status") or "").upper()
        state = STATES.get(code)
        if state is None:
            raise ProviderUnavailable(f"airtel: unknown status {code!r}")
        return Outcome(
            state=state,
            provider_txn_id=str(transaction.get("airtel_money_id") or ""),
            amount=money(transaction.get("amount")),
            currency=str(transaction.get("currency") or ""),
            account=str(transaction.get("id") or ""),
            reason=code if code == AMBIGUOUS else str(transaction.get("message") or ""),
            raw=data,
        )

    def parse_callback(self, body: bytes, query: dict) -> Callback:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = {}
        transaction = data.get("transaction") if isinstance(data, dict) else None
        transaction = transaction if isinstance(transaction, dict) else {}
        ours = str(transaction.get("id") or "")
        try:
            reference = str(uuid.UUID(ours))
        except ValueError:
            reference = ""
        return Callback(
            reference=reference,
            provider_ref=str(transaction.get("airtel_money_id") or ""),
            amount=money(transaction.get("amount")),
            currency=str(transaction.get("currency") or ""),
            account=ours if reference else "",
        )
