"""Fake payment providers: real local HTTP servers speaking MTN MoMo, Airtel Money and Pesapal.

Each runs ``http.server`` in a thread on a free port of 127.0.0.1; point the
provider's base URL setting at ``fake.base_url``. They check credentials as the real
ones do, keep the requests they were sent, and keep each payment's state, which a
test moves on with ``fake.settle(...)`` (as the payer would by approving or declining
on their phone). Faults on demand with ``fake.fail_next(fault, times=1)``:

* ``server_error`` — HTTP 500
* ``timeout`` — answers only after ``slow_seconds`` (longer than the client waits)
* ``auth`` — HTTP 401 as for an expired token

Each fake can also send its callback to our endpoint through Django's test client,
as often as a test likes (duplicate callbacks), saying whatever the test makes it say.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

FAULTS = {"server_error", "timeout", "auth"}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict


@dataclass
class Answer:
    status: int
    body: dict | str | None = None


class FakeServer:
    """An HTTP API on a local port; subclasses answer its calls in ``handle``."""

    slow_seconds = 3.0  # longer than the client waits (PAYMENT_PROVIDER_TIMEOUT in tests)

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"_raw": raw}
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                recorded = Recorded(
                    self.command, parts.path, query, dict(self.headers.items()), body
                )
                answer = fake._answer(recorded)
                payload = b""
                if answer.body is not None:
                    text = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
                    payload = text.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test)

            do_GET = do_POST = do_PUT = _serve  # noqa: N815 - http.server's names

            def log_message(self, format, *args) -> None:  # noqa: A002 - the base's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def fail_next(self, fault: str, times: int = 1) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.extend([fault] * times)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self, method: str, path_start: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_start)]

    def _answer(self, request: Recorded) -> Answer:
        with self._lock:
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
        if fault == "timeout":
            time.sleep(self.slow_seconds)
            return Answer(504, {"error": "too late"})
        if fault == "server_error":
            return Answer(500, "<html><body>Internal Server Error</body></html>")
        if fault == "auth":
            return Answer(401, {"error": "invalid token"})
        with self._lock:
            return self.handle(request)

    def handle(self, request: Recorded) -> Answer:
        raise NotImplementedError


def _bearer(request: Recorded) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


# --- MTN MoMo Collections ---------------------------------------------------------------------


class FakeMtn(FakeServer):
    """Collections: token, request-to-pay (202, 409 on a reused reference), status."""

    def __init__(self, *, api_user="mtn-user", api_key="mtn-key", subscription_key="mtn-sub"):
        self.api_user, self.api_key, self.subscription_key = api_user, api_key, subscription_key
        self.tokens: set[str] = set()
        self.payments: dict[str, dict] = {}
        super().__init__()

    def handle(self, request: Recorded) -> Answer:
        if request.headers.get("Ocp-Apim-Subscription-Key") != self.subscription_key:
            return Answer(401, {"statusCode": 401, "message": "Access denied: subscription key"})
        if request.path == "/collection/token/" and request.method == "POST":
            expected = base64.b64encode(f"{self.api_user}:{self.api_key}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {expected}":
                return Answer(401, {"error": "login_failed"})
            token = uuid.uuid4().hex
            self.tokens.add(token)
            return Answer(
                200, {"access_token": token, "token_type": "access_token", "expires_in": 3600}
            )
        if _bearer(request) not in self.tokens:
            return Answer(401, {"code": "INVALID_TOKEN"})
        if request.headers.get("X-Target-Environment") != "sandbox":
            return Answer(400, {"code": "INVALID_TARGET_ENVIRONMENT"})
        if request.path == "/collection/v1_0/requesttopay" and request.method == "POST":
            ref = request.headers.get("X-Reference-Id", "")
            try:
                uuid.UUID(ref)
            except ValueError:
                return Answer(400, {"code": "INVALID_REFERENCE_ID"})
            if ref in self.payments:
                return Answer(409, {"code": "RESOURCE_ALREADY_EXIST"})
            body = request.body
            payer = body.get("payer") or {}
            if not str(payer.get("partyId", "")).isdigit() or not body.get("amount"):
                return Answer(400, {"code": "INVALID_PAYER", "message": "Payer invalid"})
            self.payments[ref] = {
                "amount": body["amount"],
                "currency": body.get("currency"),
                "externalId": body.get("externalId"),
                "payer": payer,
                "payerMessage": body.get("payerMessage"),
                "payeeNote": body.get("payeeNote"),
                "status": "PENDING",
            }
            return Answer(202, None)
        prefix = "/collection/v1_0/requesttopay/"
        if request.path.startswith(prefix) and request.method == "GET":
            found = self.payments.get(request.path[len(prefix) :])
            if found is None:
                return Answer(404, {"code": "RESOURCE_NOT_FOUND"})
            return Answer(200, found)
        return Answer(404, {"code": "NOT_FOUND"})

    def settle(self, ref, status="SUCCESSFUL", *, txn=None, reason=None, **override) -> dict:
        """The payer approved (or declined): the payment's status moves on."""
        with self._lock:
            found = self.payments[str(ref)]
            found["status"] = status
            if status == "SUCCESSFUL":
                found["financialTransactionId"] = txn or str(uuid.uuid4().int)[:10]
            if reason:
                found["reason"] = reason
            found.update(override)
            return found

    def callback(self, client, path: str, ref, **override):
        """MTN's one callback (PUT, JSON like the status) to our endpoint at ``path``."""
        body = {**self.payments[str(ref)], **override}
        return client.put(path, json.dumps(body), content_type="application/json")


# --- Airtel Money ---------------------------------------------------------------------------


class FakeAirtel(FakeServer):
    """Token, a payment prompt (``/merchant/v1/payments/``) and its status (TS/TF/TIP/TA)."""

    def __init__(self, *, client_id="airtel-id", client_secret="airtel-secret"):
        self.client_id, self.client_secret = client_id, client_secret
        self.tokens: set[str] = set()
        self.payments: dict[str, dict] = {}
        super().__init__()

    @staticmethod
    def _status(success: bool, code: str, message: str) -> dict:
        return {
            "code": code,
            "message": message,
            "result_code": "ESB000010" if success else "ESB000001",
            "success": success,
        }

    def handle(self, request: Recorded) -> Answer:
        if request.path == "/auth/oauth2/token" and request.method == "POST":
            body = request.body
            if (body.get("client_id"), body.get("client_secret")) != (
                self.client_id,
                self.client_secret,
            ) or body.get("grant_type") != "client_credentials":
                return Answer(401, {"error": "invalid_client"})
            token = uuid.uuid4().hex
            self.tokens.add(token)
            return Answer(200, {"access_token": token, "expires_in": "180", "token_type": "bearer"})
        if _bearer(request) not in self.tokens:
            return Answer(401, {"status": self._status(False, "401", "Unauthorized")})
        if request.headers.get("X-Country") != "UG" or request.headers.get("X-Currency") != "UGX":
            return Answer(400, {"status": self._status(False, "400", "Country or currency")})
        if request.path == "/merchant/v1/payments/" and request.method == "POST":
            transaction = request.body.get("transaction") or {}
            msisdn = str((request.body.get("subscriber") or {}).get("msisdn", ""))
            if not msisdn.isdigit() or msisdn.startswith(("0", "256")) or len(msisdn) != 9:
                return Answer(
                    200, {"data": {}, "status": self._status(False, "400", "Invalid MSISDN")}
                )
            if transaction.get("id") in self.payments:
                return Answer(
                    200,
                    {"data": {}, "status": self._status(False, "400", "Duplicate transaction id")},
                )
            self.payments[transaction["id"]] = {
                "id": transaction["id"],
                "amount": transaction.get("amount"),
                "msisdn": msisdn,
                "status": "TIP",
                "message": "In process",
                "airtel_money_id": "",
            }
            return Answer(
                200,
                {
                    "data": {"transaction": {"id": transaction["id"], "status": "Success."}},
                    "status": self._status(True, "200", "SUCCESS"),
                },
            )
        prefix = "/standard/v1/payments/"
        if request.path.startswith(prefix) and request.method == "GET":
            found = self.payments.get(request.path[len(prefix) :])
            if found is None:
                return Answer(404, {"status": self._status(False, "404", "Not found")})
            transaction = {k: found[k] for k in ("id", "status", "message", "airtel_money_id")}
            transaction.update(found.get("reported", {}))
            return Answer(
                200,
                {
                    "data": {"transaction": transaction},
                    "status": self._status(True, "200", "SUCCESS"),
                },
            )
        return Answer(404, {"status": self._status(False, "404", "No such resource")})

    def settle(self, txn_id, status="TS", *, airtel_money_id=None, **reported) -> dict:
        """The payer answered the prompt; ``reported`` adds fields the status then shows."""
        with self._lock:
            found = self.payments[txn_id]
            found["status"] = status
            found["message"] = {"TS": "Paid", "TF": "Failed", "TA": "Ambiguous"}.get(status, "")
            if status == "TS":
                found["airtel_money_id"] = airtel_money_id or f"MP{uuid.uuid4().hex[:10].upper()}"
            found["reported"] = reported
            return found

    def callback(self, client, path: str, txn_id, **override):
        """Airtel's callback (POST JSON) to our endpoint at ``path``."""
        found = self.payments[txn_id]
        transaction = {
            "id": found["id"],
            "message": found["message"],
            "status_code": found["status"],
            "airtel_money_id": found["airtel_money_id"],
            **override,
        }
        return client.post(
            path, json.dumps({"transaction": transaction}), content_type="application/json"
        )


# --- Pesapal 3.0 ----------------------------------------------------------------------------


class FakePesapal(FakeServer):
    """Token, RegisterIPN, SubmitOrderRequest, GetTransactionStatus (status_code 0–3)."""

    def __init__(self, *, consumer_key="pp-key", consumer_secret="pp-secret"):
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.tokens: set[str] = set()
        self.ipns: dict[str, str] = {}
        self.orders: dict[str, dict] = {}
        super().__init__()

    def handle(self, request: Recorded) -> Answer:
        if request.path == "/Auth/RequestToken" and request.method == "POST":
            body = request.body
            if (body.get("consumer_key"), body.get("consumer_secret")) != (
                self.consumer_key,
                self.consumer_secret,
            ):
                return Answer(
                    200,
                    {
                        "token": None,
                        "status": "500",
                        "error": {
                            "error_type": "api_error",
                            "code": "invalid_consumer_key_or_secret_provided",
                            "message": "",
                        },
                    },
                )
            token = uuid.uuid4().hex
            self.tokens.add(token)
            return Answer(
                200,
                {
                    "token": token,
                    "expiryDate": "2026-11-22T05:00:00Z",
                    "error": None,
                    "status": "200",
                    "message": "Request processed",
                },
            )
        if _bearer(request) not in self.tokens:
            return Answer(401, {"error": {"code": "invalid_token"}})
        if request.path == "/URLSetup/RegisterIPN" and request.method == "POST":
            ipn_id = str(uuid.uuid4())
            self.ipns[ipn_id] = request.body.get("url", "")
            return Answer(
                200,
                {
                    "url": request.body.get("url"),
                    "created_date": "2026-11-22",
                    "ipn_id": ipn_id,
                    "error": None,
                    "status": "200",
                },
            )
        if request.path == "/Transactions/SubmitOrderRequest" and request.method == "POST":
            body = request.body
            if body.get("notification_id") not in self.ipns:
                return Answer(200, {"error": {"code": "invalid_ipn_id"}, "status": "400"})
            if any(o["merchant_reference"] == body.get("id") for o in self.orders.values()):
                return Answer(
                    200, {"error": {"code": "duplicate_order_reference"}, "status": "400"}
                )
            tracking = str(uuid.uuid4())
            self.orders[tracking] = {
                "merchant_reference": body.get("id"),
                "amount": body.get("amount"),
                "currency": body.get("currency"),
                "status_code": 0,
                "payment_status_description": "INVALID",
                "confirmation_code": "",
                "callback_url": body.get("callback_url"),
            }
            return Answer(
                200,
                {
                    "order_tracking_id": tracking,
                    "merchant_reference": body.get("id"),
                    "redirect_url": f"{self.base_url}/iframe/{tracking}",
                    "error": None,
                    "status": "200",
                },
            )
        if request.path == "/Transactions/GetTransactionStatus" and request.method == "GET":
            found = self.orders.get(request.query.get("orderTrackingId", ""))
            if found is None:
                return Answer(
                    200, {"status_code": 0, "error": {"code": "order_not_found"}, "status": "500"}
                )
            return Answer(
                200,
                {
                    "payment_method": "Visa",
                    "amount": found["amount"],
                    "created_date": "2026-11-22T04:00:00.000",
                    "confirmation_code": found["confirmation_code"],
                    "payment_status_description": found["payment_status_description"],
                    "description": "",
                    "message": "Request processed successfully",
                    "payment_account": "476173**0010",
                    "call_back_url": found["callback_url"],
                    "status_code": found["status_code"],
                    "merchant_reference": found["merchant_reference"],
                    "currency": found["currency"],
                    "error": {"error_type": None, "code": None, "message": None},
                    "status": "200",
                },
            )
        return Answer(404, {"error": {"code": "not_found"}})

    def order_for(self, merchant_reference) -> str:
        return next(
            t for t, o in self.orders.items() if o["merchant_reference"] == str(merchant_reference)
        )

    def settle(self, tracking, status_code=1, **override) -> dict:
        with self._lock:
            found = self.orders[tracking]
            found["status_code"] = status_code
            found["payment_status_description"] = {1: "Completed", 2: "Failed", 3: "Reversed"}.get(
                status_code, "INVALID"
            )
            if status_code == 1:
                found["confirmation_code"] = uuid.uuid4().hex[:10].upper()
            found.update(override)
            return found

    def ipn(self, client, path: str, tracking: str):
        """Pesapal's IPN (GET): only the tracking id and our merchant reference."""
        found = self.orders[tracking]
        query = urlencode(
            {
                "OrderTrackingId": tracking,
                "OrderNotificationType": "IPNCHANGE",
                "OrderMerchantReference": found["merchant_reference"],
            }
        )
        return client.get(f"{path}?{query}")
