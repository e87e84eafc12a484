"""A real local HTTP server playing the platform's side of the edge API contract.

It stores readings the way the contract says the server does (a batch id answers
the same every time; the same id with other content is a 409; a reading at a
(meter, ts) already stored is a duplicate), and can be told to answer anything else.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakePlatform:
    """Start with ``FakePlatform().start()``; ``url`` is its base URL."""

    def __init__(self, token: str = "secret", gateway: str = "kla-block-a", max_batch=5000):
        self.tokens = {token}
        self.gateway = gateway
        self.max_batch = max_batch
        self.config = {"gateway": gateway, "version": 1, "poll_interval_s": 10,
                       "log_interval_s": 900, "meters": []}
        self.batches: dict[str, tuple[str, dict]] = {}
        self.stored: dict[tuple[int, str], dict] = {}
        self.posts = Counter()  # batch_id -> how many times it was posted
        self.duplicates = 0
        self.conflicts = 0
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.heartbeats: list[dict] = []
        self.results: dict[str, list[dict]] = {}
        self.discoveries: list[dict] = []
        self.commands: list[dict] = []  # handed out with every heartbeat answer
        self.forced: deque = deque()  # (status, headers) answers for the next readings posts
        self.hang = threading.Event()  # set: store a batch, then never answer
        self.release = threading.Event()
        self.hanging = threading.Event()  # set once a batch was stored without an answer
        self.lock = threading.Lock()
        self.server = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, port: int = 0) -> FakePlatform:
        """Serve on 127.0.0.1 (a free port unless one is given)."""
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Go down (connections refused) until started again."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def force(self, status: int, headers: dict | None = None, times: int = 1) -> None:
        """Answer the next readings posts with ``status``."""
        for _ in range(times):
            self.forced.append((status, headers or {}))

    def statuses(self, path: str) -> list[int]:
        return [s for _, p, s in self.requests if p == path]

    # -- the contract -------------------------------------------------------------------

    def readings(self, body: dict) -> tuple[int, dict]:
        if not isinstance(body, dict) or "batch_id" not in body or not isinstance(
                body.get("readings"), list):
            return 400, {"error": "malformed"}
        if body.get("gateway") != self.gateway:
            return 403, {"error": "gateway mismatch"}
        if len(body["readings"]) > self.max_batch:
            return 413, {"error": "too many readings"}
        content = json.dumps(body["readings"], sort_keys=True)
        with self.lock:
            self.posts[body["batch_id"]] += 1
            if body["batch_id"] in self.batches:
                seen, answer = self.batches[body["batch_id"]]
                if seen != content:
                    self.conflicts += 1
                    return 409, {"error": "batch_id reused with other content"}
                return 200, answer
            accepted = duplicates = 0
            for reading in body["readings"]:
                key = (reading["address"], reading["ts"])
                if key in self.stored:
                    duplicates += 1
                else:
                    self.stored[key] = reading
                    accepted += 1
            self.duplicates += duplicates
            answer = {"batch_id": body["batch_id"], "accepted": accepted,
                      "duplicates": duplicates, "rejected": []}
            self.batches[body["batch_id"]] = (content, answer)
        return 200, answer

    def _handler(self):
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, str(v))
                self.end_headers()
                self.wfile.write(data)
                platform.requests.append((self.command, self.path, status))

            def _authorised(self) -> bool:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token not in platform.tokens:
                    self._answer(401, {"error": "unknown token"})
                    return False
                return True

            def _body(self):
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                try:
                    return json.loads(data)
                except ValueError:
                    return None

            def do_GET(self):
                if not self._authorised():
                    return
                if self.path == "/api/v1/edge/config":
                    self._answer(200, platform.config)
                else:
                    self._answer(404, {})

            def do_POST(self):
                if not self._authorised():
                    return
                body = self._body()
                path = self.path.removeprefix("/api/v1/edge")
                if path == "/readings":
                    self._readings(body)
                elif path == "/heartbeat":
                    platform.heartbeats.append(body)
                    self._answer(200, {"config_version": platform.config["version"],
                                       "commands": list(platform.commands)})
                elif path.startswith("/commands/") and path.endswith("/result"):
                    platform.results.setdefault(path.split("/")[2], []).append(body)
                    self._answer(200, {})
                elif path == "/discoveries":
                    platform.discoveries.append(body)
                    self._answer(200, {})
                else:
                    self._answer(404, {})

            def _readings(self, body):
                if platform.forced:
                    status, headers = platform.forced.popleft()
                    self._answer(status, {"error": "forced"}, headers)
                    return
                status, answer = platform.readings(body)
                if platform.hang.is_set() and status == 200:
                    platform.hanging.set()
                    platform.release.wait(30)  # stored, but the agent never hears back
                    return
                self._answer(status, answer)

        return Handler
