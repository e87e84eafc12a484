"""A real local HTTP server answering like OpenEMS Edge's REST-Api controller (read-only).

``GET /rest/channel/<component>/<channel>`` with HTTP basic auth answers
``{"address": "_sum/EssSoc", "type": "INTEGER", "accessMode": "RO", "text": "",
"unit": "%", "value": 63}``; an unknown channel is 404, a wrong user/password 401,
and anything but GET 405 (this fake is read-only, as the agent's use of it is).
Values are set by the test (``fake.values[...] = ...``); ``fake.down()`` closes the
port (connection refused) and ``fake.up()`` opens it again on the same port.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UNITS = {"Soc": "%", "Energy": "Wh", "Power": "W"}


def unit_of(channel: str) -> str:
    for suffix, unit in UNITS.items():
        if suffix in channel:
            return unit
    return ""


class FakeOpenEMS:
    """Start with ``FakeOpenEMS().start()``; ``url`` is the base URL (no /rest)."""

    def __init__(self, user: str = "x", password: str = "user"):
        self.user, self.password = user, password
        self.values: dict[str, float | None] = {
            "_sum/ProductionActivePower": 2400,
            "_sum/ProductionActiveEnergy": 1_000_000,
            "_sum/ConsumptionActivePower": 1800,
            "_sum/GridActivePower": 0,
            "_sum/EssSoc": 63,
            "_sum/EssActiveChargeEnergy": 400_000,
            "_sum/EssActiveDischargeEnergy": 350_000,
        }
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self._port = 0

    def start(self, port: int = 0) -> FakeOpenEMS:
        self.server = ThreadingHTTPServer(("127.0.0.1", port or self._port), self._handler())
        self.server.daemon_threads = True
        self._port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def down(self) -> None:
        """Stop answering: the port is closed (connection refused)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def up(self) -> None:
        """Answer again, on the same port."""
        self.start(self._port)

    stop = down

    def gets(self, status: int | None = None) -> int:
        with self.lock:
            return sum(1 for m, _, s in self.requests if m == "GET" and status in (None, s))

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict | None = None, headers=None):
                data = json.dumps(body or {}).encode()
                with fake.lock:
                    fake.requests.append((self.command, self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                expected = base64.b64encode(f"{fake.user}:{fake.password}".encode()).decode()
                return self.headers.get("Authorization") == f"Basic {expected}"

            def do_GET(self):
                if not self._authorised():
                    return self._answer(401, {}, {"WWW-Authenticate": 'Basic realm="OpenEMS"'})
                prefix = "/rest/channel/"
                if not self.path.startswith(prefix):
                    return self._answer(404, {"error": "not found"})
                address = self.path[len(prefix) :]
                with fake.lock:
                    known = address in fake.values
                    value = fake.values.get(address)
                if not known:
                    return self._answer(404, {"error": f"Channel {address} not found"})
                kind = "INTEGER" if isinstance(value, int) else "DOUBLE"
                return self._answer(
                    200,
                    {
                        "address": address,
                        "type": kind,
                        "accessMode": "RO",
                        "text": "",
                        "unit": unit_of(address),
                        "value": value,
                    },
                )

            def _read_only(self):
                return self._answer(405, {"error": "read-only"})

            do_POST = do_PUT = do_DELETE = _read_only

        return Handler
