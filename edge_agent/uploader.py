"""The platform's HTTP API as the contract fixes it, and the outbox's upload loop.

Answers: 200 -> done; 5xx, 429, no answer -> keep and retry with exponential
backoff and jitter, never sooner than ``Retry-After``; 413 -> split and retry;
401 -> keep everything and hold until the token changes; other 4xx -> dead letter.

Spreading a fleet's uploads: every gateway takes its interval readings at the same
boundary (:00, :15, ...), so without care a thousand gateways post within the same few
seconds and each waits behind the others. A new interval's readings are held for a fixed
delay of their own gateway (:func:`upload_offset`, from its name: the same every
interval, different between gateways, below ``upload_spread_s`` and half the interval)
before their batch is built. A backlog, a retry or a batch already built is never held.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from .clock import Clock, iso
from .outbox import Outbox

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0
AUTH_HOLD_S = 900.0


def upload_offset(gateway: str | None, spread_s: float, interval_s: float) -> float:
    """Seconds this gateway holds a new interval's readings: in ``[0, spread)``, where
    spread is ``spread_s`` but at most half the interval; evenly spread over a fleet and
    fixed for a gateway (a hash of its name), so its uploads stay regular."""
    spread = min(spread_s, interval_s / 2)
    if not gateway or spread <= 0:
        return 0.0
    digest = hashlib.sha256(gateway.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * spread


class ApiError(Exception):
    """No usable answer (network down, timeout, not JSON)."""


class Api:
    """Requests to ``{server}/api/v1/edge/...`` with the gateway's bearer token."""

    def __init__(self, base_url: str, token_source, gzip_bodies: bool = True,
                 timeout_s: float = 30.0, transport=None):
        self.base = base_url.rstrip("/") + "/api/v1/edge"
        self.token_source = token_source
        self.gzip_bodies = gzip_bodies
        self.client = httpx.Client(timeout=timeout_s, transport=transport)

    def token(self) -> str:
        """The current token ('' when none is configured)."""
        return self.token_source() or ""

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token()}", "Accept": "application/json",
                "User-Agent": "mcoms-edge"}

    def post(self, path: str, body: dict) -> httpx.Response:
        """POST a JSON body (gzip-compressed if enabled); raises ApiError without an answer."""
        data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        headers = {**self._headers(), "Content-Type": "application/json"}
        if self.gzip_bodies:
            data = gzip.compress(data, mtime=0)
            headers["Content-Encoding"] = "gzip"
        try:
            return self.client.post(self.base + path, content=data, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(f"POST {path}: {exc!r}") from exc

    def get(self, path: str) -> httpx.Response:
        """GET; raises ApiError without an answer."""
        try:
            return self.client.get(self.base + path, headers=self._headers())
        except httpx.HTTPError as exc:
            raise ApiError(f"GET {path}: {exc!r}") from exc

    def close(self) -> None:
        """Close connections."""
        self.client.close()


def retry_after_s(response: httpx.Response, now) -> float | None:
    """Seconds the server asked us to wait (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


@dataclass
class UploadStatus:
    """Where uploading stands, for the heartbeat and the log."""

    failures: int = 0
    next_attempt: float = 0.0  # monotonic
    auth_failed: bool = False
    auth_token: str | None = None
    last_error: str | None = None


class Uploader:
    """Sends the outbox's batches one at a time, as the contract says."""

    def __init__(self, api: Api, outbox: Outbox, gateway_source, clock: Clock,
                 rng=random.random, batch_limit: int = 5000, path: str = "/readings",
                 hold_s: Callable[[], float] = lambda: 0.0):
        self.api = api
        self.hold_s = hold_s  # seconds a new interval's readings wait (upload_offset)
        self.path = path  # "/plant" for the plant samples' queue (openems.PlantQueue)
        self.outbox = outbox
        self.gateway_source = gateway_source
        self.clock = clock
        self.rng = rng
        self.batch_limit = batch_limit
        self.status = UploadStatus()

    def ready(self) -> bool:
        """Whether an attempt is allowed now (backoff over, token not known bad)."""
        s = self.status
        if s.auth_failed and self.api.token() != s.auth_token:
            log.warning("token changed: uploading again")
            s.auth_failed, s.next_attempt = False, 0.0
        return self.clock.monotonic() >= s.next_attempt

    def step(self) -> str:
        """One attempt: sent, idle, wait, retry, split, held or dead."""
        if not self.ready():
            return "wait"
        gateway = self.gateway_source()
        if not gateway:
            return "idle"  # the gateway's name comes with the server's config
        if self._holding():
            return "wait"
        batch = self.outbox.next_batch(gateway, iso(self.clock.now()), self.batch_limit)
        if batch is None:
            return "idle"
        try:
            response = self.api.post(self.path, batch)
        except ApiError as exc:
            return self._retry(f"no answer: {exc}", None)
        return self._handle(batch, response)

    def _holding(self) -> bool:
        """Whether the next batch to build starts with readings still in their hold."""
        hold = self.hold_s()
        if hold <= 0 or self.outbox.has_open_batch():
            return False
        first = self.outbox.first_unbatched_ts()
        if first is None:
            return False
        ts = datetime.fromisoformat(first.replace("Z", "+00:00"))
        return self.clock.now() < ts + timedelta(seconds=hold)

    def _handle(self, batch: dict, response: httpx.Response) -> str:
        code, batch_id = response.status_code, batch["batch_id"]
        if code == 200:
            self._answered(batch, response)
            self.outbox.ack(batch_id)
            self.status.failures, self.status.last_error = 0, None
            return "sent"
        if code == 413:
            parts = self.outbox.split(batch_id, iso(self.clock.now()))
            if parts:
                log.warning("batch %s too large (%d items): split in two", batch_id,
                            len(_items(batch)))
                return "split"
            self.outbox.dead_letter(batch_id, "413 for a single reading")
            return "dead"
        if code == 401:
            self.status.auth_failed = True
            self.status.auth_token = self.api.token()
            self.status.next_attempt = self.clock.monotonic() + AUTH_HOLD_S
            self.status.last_error = "401: token refused"
            log.error("THE SERVER REFUSES THIS GATEWAY'S TOKEN (401): uploads are held, every "
                      "reading is kept; fix the token (MCOMS_EDGE_TOKEN or the token file)")
            return "held"
        if code == 429 or code >= 500:
            return self._retry(f"HTTP {code}", retry_after_s(response, self.clock.now()))
        reason = f"HTTP {code}: {response.text[:500]}"
        self.outbox.dead_letter(batch_id, reason)
        log.error("batch %s dead-lettered (%s); kept in the outbox for a person", batch_id,
                  reason)
        return "dead"

    def _answered(self, batch: dict, response: httpx.Response) -> None:
        """Log what the server flagged; nothing in the answer may stop the ack."""
        try:
            answer = response.json()
        except ValueError:
            return
        rejected = answer.get("rejected") if isinstance(answer, dict) else None
        if not isinstance(rejected, list):
            return
        readings = _items(batch)
        for item in rejected[:20]:
            index = item.get("index") if isinstance(item, dict) else None
            reading = readings[index] if isinstance(index, int) and 0 <= index < len(
                readings) else {}
            log.warning("server flagged %s@%s: %s", reading.get("address", reading.get("channel")),
                        reading.get("ts"), item.get("reason") if isinstance(item, dict) else item)
        if len(rejected) > 20:
            log.warning("... and %d more flagged readings in batch %s", len(rejected) - 20,
                        batch["batch_id"])

    def _retry(self, reason: str, retry_after: float | None) -> str:
        s = self.status
        s.failures += 1
        # The exponent is capped: days of failures must not overflow a float.
        delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** min(s.failures - 1, 20))
        delay *= 0.5 + 0.5 * self.rng()  # jitter: Pis coming back together do not stampede
        if retry_after is not None:
            delay = max(delay, retry_after)
        s.next_attempt = self.clock.monotonic() + delay
        s.last_error = reason
        log.warning("upload failed (%s); retrying in %.0f s", reason, delay)
        return "retry"

    def drain(self, max_batches: int = 50) -> str:
        """Send batches until there is nothing to send or an attempt fails."""
        outcome = "idle"
        for _ in range(max_batches):
            outcome = self.step()
            if outcome not in ("sent", "split", "dead"):
                break
        return outcome


def _items(batch: dict) -> list:
    """A batch's readings (or a plant batch's samples)."""
    return batch.get("readings", batch.get("samples", []))
