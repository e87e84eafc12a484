"""Fake SMS providers: real local HTTP servers speaking Africa's Talking's and Twilio's APIs.

Each runs ``http.server`` in a thread on a free port of 127.0.0.1; point the
provider's base URL setting at ``fake.base_url``. They check credentials the way
the real ones do, record every request, and answer with a fault on demand:

* ``fake.fail_next("server_error")`` — HTTP 500
* ``fake.fail_next("auth")`` — HTTP 401 as for a wrong key
* ``fake.fail_next("rate_limit")`` — HTTP 429
* ``fake.fail_next("slow")`` — answers (successfully) only after ``slow_seconds``
* ``fake.fail_next("hang")`` — accepts the message, then keeps the connection
  silent for ``hang_seconds`` (longer than our time-out) before answering
* ``fake.fail_next("drop")`` — accepts the message, then closes the connection
  without an answer

``fake.stop()`` closes the port (connection refused) and ``fake.start()`` opens the
same port again: a provider that is down, then back. ``accepted`` counts each message
the provider took, by (recipient, text); ``outbox`` lists them with the provider's id.

``invalid_numbers`` holds recipients the provider refuses as invalid. Each fake
can also post a provider's delivery report to our endpoint through Django's test
client, signed as the provider signs it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

from twilio.request_validator import RequestValidator

FAULTS = {"server_error", "auth", "rate_limit", "slow", "hang", "drop"}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class Answer:
    status: int
    body: str
    content_type: str = "application/json"


class FakeProvider:
    """A provider's API on a local port; subclasses answer its calls."""

    slow_seconds = 2.5
    hang_seconds = 2.0

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.invalid_numbers: set[str] = set()
        #: Messages the provider took, by (recipient, text): more than 1 is a double send.
        self.accepted: Counter[tuple[str, str]] = Counter()
        #: Each message taken: {"id", "to", "body"}.
        self.outbox: list[dict[str, str]] = []
        self._faults: deque[str] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {key: values[-1] for key, values in parse_qs(raw).items()}
                recorded = Recorded("POST", self.path, dict(self.headers.items()), form)
                answer, after = fake._answer(recorded)
                if after == "drop":
                    # Taken, but the connection closes before any answer.
                    self.close_connection = True
                    return
                if after == "hang":
                    time.sleep(fake.hang_seconds)
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.content_type)
                    body = answer.body.encode()
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting

            def log_message(self, format, *args) -> None:  # noqa: A002 - the base's name
                pass

        self._handler = Handler
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.start()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again) on the fake's port: the provider is up."""
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the port: calls are refused until :meth:`start`."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def take(self, to: str, body: str, provider_id: str) -> None:
        """Note a message the provider accepted (subclasses call it)."""
        with self._lock:
            self.accepted[(to, body)] += 1
            self.outbox.append({"id": provider_id, "to": to, "body": body})

    def fail_next(self, fault: str, times: int = 1) -> None:
        """Answer the next ``times`` calls with ``fault`` (see the module docstring)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.extend([fault] * times)

    def close(self) -> None:
        """Stop the server."""
        self.stop()

    def _answer(self, request: Recorded) -> tuple[Answer, str | None]:
        with self._lock:
            self.requests.append(request)
            fault = self._faults.popleft() if self._faults else None
        if fault == "slow":
            time.sleep(self.slow_seconds)
            fault = None
        if fault == "server_error":
            return self.server_error(), None
        if fault == "rate_limit":
            return self.rate_limited(), None
        if fault == "auth" or not self.authorised(request):
            return self.unauthorised(), None
        return self.handle(request), fault if fault in ("hang", "drop") else None

    # What subclasses speak.
    def authorised(self, request: Recorded) -> bool:
        raise NotImplementedError

    def handle(self, request: Recorded) -> Answer:
        raise NotImplementedError

    def server_error(self) -> Answer:
        raise NotImplementedError

    def rate_limited(self) -> Answer:
        raise NotImplementedError

    def unauthorised(self) -> Answer:
        raise NotImplementedError


def _parts(text: str) -> int:
    """Parts of a plain-ASCII text, as the provider bills it (160, then 153 each)."""
    return 1 if len(text) <= 160 else -(-len(text) // 153)


class FakeAfricasTalking(FakeProvider):
    """``POST /version1/messaging`` with an ``apiKey`` header, as Africa's Talking answers it."""

    def __init__(self, *, username: str = "sandbox", api_key: str = "at-test-key") -> None:
        self.username = username
        self.api_key = api_key
        self.currency = "KES"
        self.price_per_part = Decimal("0.8000")
        #: Sender ids registered with the account; any other ``from`` is refused.
        self.sender_ids: set[str] = {"MCOMS"}
        super().__init__()

    def authorised(self, request: Recorded) -> bool:
        return (
            request.headers.get("apiKey") == self.api_key
            and request.form.get("username") == self.username
        )

    def unauthorised(self) -> Answer:
        return Answer(401, "The supplied authentication is invalid", "text/plain")

    def server_error(self) -> Answer:
        return Answer(500, "Internal Server Error", "text/plain")

    def rate_limited(self) -> Answer:
        return Answer(429, "Too Many Requests", "text/plain")

    def handle(self, request: Recorded) -> Answer:
        if request.path != "/version1/messaging":
            return Answer(404, "Not Found", "text/plain")
        sender = request.form.get("from")
        if sender is not None and sender not in self.sender_ids:
            data = {"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}
            return Answer(201, json.dumps(data))
        recipients = []
        total = Decimal("0")
        for number in request.form.get("to", "").split(","):
            if number in self.invalid_numbers or not number.startswith("+"):
                recipients.append(
                    {
                        "statusCode": 403,
                        "number": number,
                        "status": "InvalidPhoneNumber",
                        "cost": "0",
                        "messageId": "None",
                    }
                )
                continue
            cost = self.price_per_part * _parts(request.form.get("message", ""))
            total += cost
            message_id = f"ATXid_{uuid.uuid4().hex}"
            self.take(number, request.form.get("message", ""), message_id)
            recipients.append(
                {
                    "statusCode": 101,
                    "number": number,
                    "status": "Success",
                    "cost": f"{self.currency} {cost:.4f}",
                    "messageId": message_id,
                }
            )
        sent = sum(1 for r in recipients if r["statusCode"] == 101)
        data = {
            "SMSMessageData": {
                "Message": f"Sent to {sent}/{len(recipients)} Total Cost: "
                f"{self.currency} {total:.4f}",
                "Recipients": recipients,
            }
        }
        return Answer(201, json.dumps(data))

    def delivery_report(
        self,
        client,
        path: str,
        message_id: str,
        status: str,
        reason: str = "",
        phone: str = "+254711000000",
    ):
        """POST a delivery report to our endpoint at ``path``, as AT does."""
        data = {"id": message_id, "status": status, "phoneNumber": phone}
        data["networkCode"] = "63902"
        if reason:
            data["failureReason"] = reason
        return client.post(path, urlencode(data), content_type="application/x-www-form-urlencoded")


_TWILIO_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")


class FakeTwilio(FakeProvider):
    """The Messages resource of Twilio's REST API, with HTTP basic auth."""

    def __init__(self, *, account_sid: str = "AC" + "0" * 32, auth_token: str = "tw-token") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        #: What Twilio reports as the price at creation (usually still unknown: None).
        self.price: str | None = None
        self.price_unit = "USD"
        #: The StatusCallback URL each message asked for, by sid.
        self.callbacks: dict[str, str] = {}
        super().__init__()

    def authorised(self, request: Recorded) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        match = _TWILIO_MESSAGES.match(request.path)
        return request.headers.get("Authorization") == f"Basic {expected}" and bool(
            match and match["sid"] == self.account_sid
        )

    @staticmethod
    def _error(status: int, code: int, message: str) -> Answer:
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return Answer(status, json.dumps(body))

    def unauthorised(self) -> Answer:
        return self._error(401, 20003, "Authenticate")

    def server_error(self) -> Answer:
        return self._error(500, 20500, "Internal Server Error")

    def rate_limited(self) -> Answer:
        return self._error(429, 20429, "Too Many Requests")

    def handle(self, request: Recorded) -> Answer:
        to = request.form.get("To", "")
        if to in self.invalid_numbers or not to.startswith("+"):
            return self._error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        body = request.form.get("Body", "")
        sid = "SM" + uuid.uuid4().hex
        self.take(to, body, sid)
        self.callbacks[sid] = request.form.get("StatusCallback", "")
        data = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": "Sun, 22 Nov 2026 03:00:00 +0000",
            "date_sent": None,
            "date_updated": "Sun, 22 Nov 2026 03:00:00 +0000",
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": request.form.get("From"),
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(_parts(body)),
            "price": self.price,
            "price_unit": self.price_unit,
            "sid": sid,
            "status": "queued",
            "subresource_uris": {},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return Answer(201, json.dumps(data))

    def sign(self, url: str, params: dict[str, str]) -> str:
        """The ``X-Twilio-Signature`` Twilio sends for ``params`` posted to ``url``."""
        return RequestValidator(self.auth_token).compute_signature(url, params)

    def status_callback(
        self,
        client,
        path: str,
        sid: str,
        status: str,
        *,
        error_code: str = "",
        signed_url: str | None = None,
        signature: str | None = None,
    ):
        """POST a status callback to our endpoint at ``path``, signed for ``signed_url``.

        ``signed_url`` defaults to the test client's own URL for ``path``;
        ``signature`` overrides the computed one (a forger's guess).
        """
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": self.account_sid}
        if error_code:
            params["ErrorCode"] = error_code
        url = signed_url or f"http://testserver{path}"
        headers = {
            "X-Twilio-Signature": signature if signature is not None else self.sign(url, params)
        }
        return client.post(
            path,
            urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )
