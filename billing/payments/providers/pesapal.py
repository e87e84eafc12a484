"""Pesapal 3.0: card and mobile-money checkout.

``POST /Auth/RequestToken`` gives a bearer token; our notification URL is registered
once with ``POST /URLSetup/RegisterIPN`` (its ``ipn_id`` is kept, or set as a setting);
``POST /Transactions/SubmitOrderRequest`` with our unique merchant ``id`` answers an
``order_tracking_id`` and the ``redirect_url`` the customer pays at. The IPN carries
only ``OrderTrackingId`` and ``OrderMerchantReference``: the status always comes from
``GET /Transactions/GetTransactionStatus?orderTrackingId=`` (``status_code`` 1
completed, 2 failed, 3 reversed, 0 invalid / not yet paid).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from billing.payments.providers.base import (
    FAILED,
    PENDING,
    REVERSED,
    SUCCESSFUL,
    Callback,
    Outcome,
    Provider,
    ProviderRefused,
    ProviderUnavailable,
    Started,
    callback_url,
    money,
)

STATES = {1: SUCCESSFUL, 2: FAILED, 3: REVERSED, 0: PENDING}


class Pesapal(Provider):
    method = "pesapal"
    base_url_setting = "PESAPAL_BASE_URL"

    def _token(self) -> str:
        def fetch():
            response = self._call(
                "POST",
                "/Auth/RequestToken",
                json={
                    "consumer_key": settings.PESAPAL_CONSUMER_KEY,
                    "consumer_secret": settings.PESAPAL_CONSUMER_SECRET,
                },
                headers={"Accept": "application/json"},
            )
            data = self._json(response)
            if response.status_code != 200 or not data.get("token"):
                error = data.get("error") or {}
                raise ProviderRefused(f"pesapal: token refused: {error or response.status_code}")
            return data["token"], 240  # tokens last five minutes

        return self._cached_token(fetch)

    def _authorised(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {self._token()}", "Accept": "application/json"}
        response = self._call(method, path, headers=headers, **kwargs)
        if response.status_code == 401:
            self._forget_token()
            headers["Authorization"] = f"Bearer {self._token()}"
            response = self._call(method, path, headers=headers, **kwargs)
        return response

    def ipn_id(self) -> str:
        """Our notification URL's id at Pesapal: the setting, or registered once and kept."""
        if settings.PESAPAL_IPN_ID:
            return settings.PESAPAL_IPN_ID
        url = callback_url("pesapal")
        key = f"payments:pesapal-ipn:{self.base_url}:{url}"
        found = cache.get(key)
        if found:
            return found
        response = self._authorised(
            "POST", "/URLSetup/RegisterIPN", json={"url": url, "ipn_notification_type": "GET"}
        )
        data = self._json(response)
        if response.status_code != 200 or not data.get("ipn_id"):
            raise ProviderUnavailable(f"pesapal: IPN registration failed: {data.get('error')}")
        cache.set(key, data["ipn_id"], None)
        return data["ipn_id"]

    def request_payment(self, request) -> Started:
        customer = request.customer
        body = {
            "id": str(request.reference),
            "currency": request.currency,
            "amount": float(request.amount + request.fee),
            "description": f"Electricity account {customer.account_number}"[:100],
            "callback_url": settings.PAYMENT_PUBLIC_URL.rstrip("/") + reverse("payments:return"),
            "notification_id": self.ipn_id(),
            "billing_address": {
                "phone_number": (request.phone or customer.phone).lstrip("+"),
                "email_address": customer.email,
                "first_name": customer.first_name,
                "last_name": customer.last_name,
            },
        }
        response = self._authorised("POST", "/Transactions/SubmitOrderRequest", json=body)
        data = self._json(response)
        if response.status_code != 200 or data.get("error") or not data.get("order_tracking_id"):
            raise ProviderRefused(f"pesapal: order refused: {data.get('error') or data}")
        return Started(
            provider_ref=str(data["order_tracking_id"]),
            redirect_url=str(data.get("redirect_url") or ""),
        )

    def status(self, request) -> Outcome:
        if not request.provider_txn_id:
            raise ProviderUnavailable("pesapal: the order never reached Pesapal")
        response = self._authorised(
            "GET",
            "/Transactions/GetTransactionStatus",
            params={"orderTrackingId": request.provider_txn_id},
        )
        if response.status_code != 200:
            raise ProviderUnavailable(f"pesapal: status HTTP {response.status_code}")
        data = self._json(response)
        try:
            code = int(data.get("status_code"))
        except (TypeError, ValueError) as exc:
            raise ProviderUnavailable(f"pesapal: no status_code in {data}") from exc
        state = STATES.get(code)
        if state is None:
            raise ProviderUnavailable(f"pesapal: unknown status_code {code}")
        return Outcome(
            state=state,
            provider_txn_id=request.provider_txn_id,
            amount=money(data.get("amount")),
            currency=str(data.get("currency") or ""),
            account=str(data.get("merchant_reference") or ""),
            reason=str(data.get("payment_status_description") or data.get("description") or ""),
            raw=data,
        )

    def parse_callback(self, body: bytes, query: dict) -> Callback:
        fields = {k: v for k, v in query.items()}
        if body:
            try:
                data = json.loads(body)
                if isinstance(data, dict):
                    fields.update(data)
            except ValueError:
                fields.update(
                    {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}
                )
        return Callback(
            reference=str(fields.get("OrderMerchantReference") or ""),
            provider_ref=str(fields.get("OrderTrackingId") or ""),
        )
