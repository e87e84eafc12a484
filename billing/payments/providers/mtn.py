"""MTN MoMo Collections: request-to-pay.

``POST /collection/token/`` (basic auth with the API user and key) gives a bearer token;
``POST /collection/v1_0/requesttopay`` with ``X-Reference-Id`` = our request's reference
(the idempotency key: sending it again answers 409) answers 202; the status is
``GET /collection/v1_0/requesttopay/{reference}`` (``PENDING|SUCCESSFUL|FAILED``). The
callback comes once without retry, so pending requests are also polled.
"""

from __future__ import annotations

import json

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
    callback_url,
    money,
)

STATES = {"PENDING": PENDING, "SUCCESSFUL": SUCCESSFUL, "FAILED": FAILED}


def amount_text(amount) -> str:
    """MTN takes the amount as a string: ``"20000"``, ``"12.5"``."""
    return format(amount.normalize(), "f")


class MtnMomo(Provider):
    method = "mtn"
    base_url_setting = "MTN_MOMO_BASE_URL"

    def _headers(self) -> dict:
        return {
            "Authorization": f"Bearer {self._token()}",
            "X-Target-Environment": settings.MTN_MOMO_TARGET_ENVIRONMENT,
            "Ocp-Apim-Subscription-Key": settings.MTN_MOMO_SUBSCRIPTION_KEY,
        }

    def _token(self) -> str:
        def fetch():
            response = self._call(
                "POST",
                "/collection/token/",
                auth=(settings.MTN_MOMO_API_USER, settings.MTN_MOMO_API_KEY),
                headers={"Ocp-Apim-Subscription-Key": settings.MTN_MOMO_SUBSCRIPTION_KEY},
            )
            if response.status_code != 200:
                raise ProviderRefused(f"mtn: token refused (HTTP {response.status_code})")
            data = self._json(response)
            if not data.get("access_token"):
                raise ProviderUnavailable("mtn: token answer without access_token")
            return data["access_token"], data.get("expires_in", 3600)

        return self._cached_token(fetch)

    def _authorised(self, method: str, path: str, extra: dict | None = None, **kwargs):
        response = self._call(method, path, headers={**self._headers(), **(extra or {})}, **kwargs)
        if response.status_code == 401:  # token expired early: once more with a new one
            self._forget_token()
            response = self._call(
                method, path, headers={**self._headers(), **(extra or {})}, **kwargs
            )
        return response

    def request_payment(self, request) -> Started:
        body = {
            "amount": amount_text(request.amount + request.fee),
            "currency": request.currency,
            "externalId": str(request.reference),
            "payer": {"partyIdType": "MSISDN", "partyId": request.phone.lstrip("+")},
            "payerMessage": f"Electricity account {request.customer.account_number}",
            "payeeNote": f"Payment request {request.reference}",
        }
        extra = {"X-Reference-Id": str(request.reference), "X-Callback-Url": callback_url("mtn")}
        response = self._authorised("POST", "/collection/v1_0/requesttopay", json=body, extra=extra)
        if response.status_code in (202, 409):  # 409: this reference already reached them
            return Started()
        raise ProviderRefused(
            f"mtn: request refused (HTTP {response.status_code}) {response.text[:200]}"
        )

    def status(self, request) -> Outcome:
        response = self._authorised("GET", f"/collection/v1_0/requesttopay/{request.reference}")
        if response.status_code == 404:
            return Outcome(state=UNKNOWN, reason="MTN has no such request")
        if response.status_code != 200:
            raise ProviderUnavailable(f"mtn: status HTTP {response.status_code}")
        data = self._json(response)
        state = STATES.get(str(data.get("status", "")).upper())
        if state is None:
            raise ProviderUnavailable(f"mtn: unknown status {data.get('status')!r}")
        reason = data.get("reason") or ""
        if isinstance(reason, dict):
            reason = reason.get("message") or reason.get("code") or ""
        return Outcome(
            state=state,
            provider_txn_id=str(data.get("financialTransactionId") or ""),
            amount=money(data.get("amount")),
            currency=str(data.get("currency") or ""),
            account=str(data.get("externalId") or ""),
            reason=str(reason),
            raw=data,
        )

    def parse_callback(self, body: bytes, query: dict) -> Callback:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        reference = str(data.get("externalId") or data.get("referenceId") or "")
        return Callback(
            reference=reference,
            amount=money(data.get("amount")),
            currency=str(data.get("currency") or ""),
            account=str(data.get("externalId") or ""),
        )
