"""A fake Africa's Talking user-data endpoint: a real local HTTP server.

``GET /version1/user?username=…`` with header ``apiKey`` answers
``{"UserData": {"balance": "<currency> <amount>"}}``; a wrong key gets 401 as AT
gives. ``fake.balance`` is what it answers; ``fake.fail = 500`` makes it fail.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeUserData:
    def __init__(self, *, username="mcoms", api_key="at-key", balance="KES 1785.5000") -> None:
        self.username, self.api_key, self.balance = username, api_key, balance
        self.fail: int | None = None
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append(
                    {"path": url.path, "query": query, "key": self.headers.get("apiKey")}
                )
                if fake.fail:
                    status, body = fake.fail, {"error": "failure"}
                elif url.path != "/version1/user":
                    status, body = 404, {"error": "not found"}
                elif self.headers.get("apiKey") != fake.api_key or (
                    query.get("username") != fake.username
                ):
                    status, body = 401, "The supplied authentication is invalid"
                else:
                    status, body = 200, {"UserData": {"balance": fake.balance}}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
