"""Plant telemetry: OpenEMS Edge's REST API on the Pi, polled and forwarded like readings.

OpenEMS Edge (which the operator runs on the Pi for the inverters and the battery)
answers ``GET /rest/channel/<component>/<channel>`` with HTTP basic auth when its
REST-Api controller is enabled, e.g. ``{"address": "_sum/EssSoc", "type": "INTEGER",
"accessMode": "RO", "text": "", "unit": "%", "value": 63}``. The agent only reads.

- **When**: samples are stamped at boundaries of ``openems.interval_s`` (default 300 s,
  multiples since midnight UTC, as readings are), taken by the first sweep at or after
  the boundary and at most half an interval (or one poll interval, if longer) late, and
  only while the clock is synchronised.
- **What**: the configured channels (by default the ``_sum`` channels below). A channel
  that answers 404 or ``"value": null`` is left out of that sample (and a 404 channel
  is asked again only an hour later); energy counters are in Wh, power in W, SoC in %.
- **Unreachable**: a refused connection, a timeout or a 5xx ends that attempt (the rest
  of the channels are not tried), is logged and counted, and the next sweep tries again;
  the bus and the readings carry on. A 401 is logged loudly (wrong user/password).
- **Store and forward**: samples go into the agent's outbox (the same SQLite file, its
  own tables ``plant_samples`` / ``plant_batches``, unique per (ts, channel)) before
  any upload; :class:`PlantQueue` gives the uploader the same batch interface as the
  readings, so batches (≤ 5,000 samples) are built once, re-sent unchanged and
  answered as ``/edge/readings`` are: ``POST /api/v1/edge/plant`` with
  ``{"batch_id", "gateway", "sent_at", "samples": [{"ts", "channel", "value"}]}``.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from dataclasses import dataclass, field

import httpx

from .clock import Clock, interval_start, iso

log = logging.getLogger(__name__)

DEFAULT_CHANNELS = (
    "_sum/ProductionActivePower",
    "_sum/ProductionActiveEnergy",
    "_sum/ConsumptionActivePower",
    "_sum/GridActivePower",
    "_sum/EssSoc",
    "_sum/EssActiveChargeEnergy",
    "_sum/EssActiveDischargeEnergy",
    "_sum/GridBuyActiveEnergy",
)
OPENEMS_KEYS = {"url", "user", "password", "interval_s", "timeout_s", "channels"}
MISSING_RETRY_S = 3600.0
MAX_BATCH = 5000


class OpenEMSConfigError(ValueError):
    """A bad value in the ``openems`` section; the message names the key."""


@dataclass(frozen=True)
class OpenEMSConfig:
    """Where OpenEMS Edge's REST API is and what to read from it."""

    url: str
    user: str = "x"
    password: str = "user"
    interval_s: int = 300
    timeout_s: float = 2.0
    channels: tuple[str, ...] = DEFAULT_CHANNELS


def parse_openems(data, warnings: list[str]) -> OpenEMSConfig | None:
    """The ``openems:`` section of the agent's file (None when absent)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise OpenEMSConfigError(f"openems: expected a mapping, got {data!r}")
    for key in data:
        if key not in OPENEMS_KEYS:
            warnings.append(f"unknown key openems.{key} ignored")
    url = data.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise OpenEMSConfigError(f"openems.url: expected an http(s) URL, got {url!r}")
    interval = data.get("interval_s", 300)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise OpenEMSConfigError(f"openems.interval_s: expected int >= 1, got {interval!r}")
    timeout = data.get("timeout_s", 2.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise OpenEMSConfigError(f"openems.timeout_s: expected a positive number, got {timeout!r}")
    channels = data.get("channels", list(DEFAULT_CHANNELS))
    if not isinstance(channels, list) or not all(
        isinstance(c, str) and c.count("/") == 1 and all(c.split("/")) for c in channels
    ):
        raise OpenEMSConfigError(
            f"openems.channels: expected a list of component/Channel, got {channels!r}"
        )
    for key in ("user", "password"):
        if key in data and not isinstance(data[key], str | int):
            raise OpenEMSConfigError(f"openems.{key}: expected a string, got {data[key]!r}")
    return OpenEMSConfig(
        url=url.rstrip("/"),
        user=str(data.get("user", "x")),
        password=str(data.get("password", "user")),
        interval_s=interval,
        timeout_s=float(timeout),
        channels=tuple(channels),
    )


class Unreachable(Exception):
    """OpenEMS did not answer usefully: stop this attempt, try again next sweep."""


@dataclass
class OpenEMSStatus:
    """For the heartbeat's ``plant`` section and the log."""

    ok: bool | None = None
    last_ok_at: str | None = None
    last_sample_ts: str | None = None
    last_error: str | None = None
    errors: dict[str, int] = field(default_factory=dict)
    missing_channels: list[str] = field(default_factory=list)

    def count(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class OpenEMSPoller:
    """Reads the configured channels once per interval boundary."""

    def __init__(self, cfg: OpenEMSConfig, clock: Clock, last_ts: str | None = None,
                 transport=None, poll_interval_s: float = 10.0):
        self.cfg = cfg
        self.clock = clock
        # A sweep comes at most this often: a boundary may be that late without being lost.
        self.poll_interval_s = poll_interval_s
        self.last_ts = last_ts or ""
        self.status = OpenEMSStatus()
        self.missing_until: dict[str, float] = {}
        self.client = httpx.Client(auth=(cfg.user, cfg.password), timeout=cfg.timeout_s,
                                   transport=transport)

    def close(self) -> None:
        """Close connections."""
        self.client.close()

    def due(self, synced: bool) -> str | None:
        """The boundary owed a sample now, if any."""
        if not synced:
            return None
        now = self.clock.now()
        boundary = interval_start(now, self.cfg.interval_s)
        late = (now - boundary).total_seconds()
        if late > max(self.cfg.interval_s / 2, self.poll_interval_s):
            return None
        ts = iso(boundary)
        return ts if ts > self.last_ts else None

    def read_channel(self, channel: str) -> float | None:
        """One channel's value (None when OpenEMS has none); raises Unreachable."""
        url = f"{self.cfg.url}/rest/channel/{channel}"
        try:
            response = self.client.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            self.status.count("unreachable")
            raise Unreachable(f"GET {url}: {exc!r}") from exc
        if response.status_code == 401:
            self.status.count("auth")
            raise Unreachable("OPENEMS REFUSES THE AGENT'S USER/PASSWORD (401): check "
                              "openems.user and openems.password")
        if response.status_code == 404:
            self.status.count("missing_channel")
            self.missing_until[channel] = self.clock.monotonic() + MISSING_RETRY_S
            log.warning("OpenEMS has no channel %s (404); asking again in an hour", channel)
            return None
        if response.status_code != 200:
            self.status.count("http")
            raise Unreachable(f"GET {url}: HTTP {response.status_code}")
        try:
            value = response.json().get("value")
        except (ValueError, AttributeError):
            self.status.count("bad_answer")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value):
            self.status.count("bad_answer")
            return None
        return float(value)

    def poll(self, synced: bool) -> list[dict]:
        """The samples owed now (empty when none is due or OpenEMS cannot be read)."""
        ts = self.due(synced)
        if ts is None:
            return []
        now_mono = self.clock.monotonic()
        samples = []
        try:
            for channel in self.cfg.channels:
                if self.missing_until.get(channel, 0) > now_mono:
                    continue
                value = self.read_channel(channel)
                if value is not None:
                    samples.append({"ts": ts, "channel": channel, "value": value})
        except Unreachable as exc:
            self.status.ok = False
            self.status.last_error = str(exc)[:300]
            log.warning("OpenEMS not read (%s); trying again next sweep", exc)
            return []
        self.status.ok = True
        self.status.last_ok_at = iso(self.clock.now())
        self.status.last_error = None
        self.status.missing_channels = sorted(
            c for c, t in self.missing_until.items() if t > now_mono)
        self.last_ts = ts
        self.status.last_sample_ts = ts
        return samples


PLANT_SCHEMA = """
CREATE TABLE IF NOT EXISTS plant_samples (
    id INTEGER PRIMARY KEY, ts TEXT NOT NULL, channel TEXT NOT NULL, body TEXT NOT NULL,
    batch_id TEXT, UNIQUE (ts, channel));
CREATE INDEX IF NOT EXISTS plant_samples_batch ON plant_samples (batch_id, id);
CREATE TABLE IF NOT EXISTS plant_batches (
    batch_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, sent_at TEXT NOT NULL,
    gateway TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'open', reason TEXT);
"""


class PlantQueue:
    """Plant samples in the outbox's SQLite file, with the batch interface the Uploader uses
    (``next_batch``, ``batch``, ``ack``, ``split``, ``dead_letter``)."""

    def __init__(self, outbox):
        self.outbox = outbox
        self.db = outbox.db
        self.db.executescript(PLANT_SCHEMA)

    def add(self, samples: list[dict]) -> int:
        """Commit samples (one per ts and channel); returns how many were new."""
        if not samples:
            return 0
        self._make_room()
        rows = [(s["ts"], s["channel"], json.dumps(s, separators=(",", ":"))) for s in samples]
        with self.outbox._tx():
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO plant_samples (ts, channel, body) VALUES (?, ?, ?)", rows)
            added = self.db.total_changes - before
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('openems_last_ts', ?) ON CONFLICT (key) "
                "DO UPDATE SET value = max(value, excluded.value)", (max(r[0] for r in rows),))
        return added

    def last_ts(self) -> str | None:
        """The latest boundary sampled (kept across restarts)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'openems_last_ts'").fetchone()
        return row[0] if row else None

    def next_batch(self, gateway: str, now_iso: str, limit: int = MAX_BATCH) -> dict | None:
        """The open batch, else a new one of the oldest samples."""
        row = self.db.execute("SELECT batch_id FROM plant_batches WHERE state = 'open' "
                              "ORDER BY created_at, rowid LIMIT 1").fetchone()
        if row is None:
            with self.outbox._tx():
                ids = [r[0] for r in self.db.execute(
                    "SELECT id FROM plant_samples WHERE batch_id IS NULL ORDER BY id LIMIT ?",
                    (limit,))]
                if not ids:
                    return None
                batch_id = self._new_batch(gateway, now_iso, ids)
            row = (batch_id,)
        return self.batch(row[0])

    def batch(self, batch_id: str) -> dict:
        """The exact body of a batch, as first built."""
        sent_at, gateway = self.db.execute(
            "SELECT sent_at, gateway FROM plant_batches WHERE batch_id = ?",
            (batch_id,)).fetchone()
        samples = [json.loads(b) for (b,) in self.db.execute(
            "SELECT body FROM plant_samples WHERE batch_id = ? ORDER BY id", (batch_id,))]
        return {"batch_id": batch_id, "gateway": gateway, "sent_at": sent_at,
                "samples": samples}

    def _new_batch(self, gateway: str, now_iso: str, ids: list[int]) -> str:
        batch_id = str(uuid.uuid4())
        self.db.execute("INSERT INTO plant_batches (batch_id, created_at, sent_at, gateway) "
                        "VALUES (?, ?, ?, ?)", (batch_id, now_iso, now_iso, gateway))
        self.db.executemany("UPDATE plant_samples SET batch_id = ? WHERE id = ?",
                            [(batch_id, i) for i in ids])
        return batch_id

    def ack(self, batch_id: str) -> None:
        """The server has the batch: forget it."""
        with self.outbox._tx():
            self.db.execute("DELETE FROM plant_samples WHERE batch_id = ?", (batch_id,))
            self.db.execute("DELETE FROM plant_batches WHERE batch_id = ?", (batch_id,))

    def split(self, batch_id: str, now_iso: str) -> list[str]:
        """Replace a batch by two halves with new ids."""
        with self.outbox._tx():
            gateway = self.db.execute("SELECT gateway FROM plant_batches WHERE batch_id = ?",
                                      (batch_id,)).fetchone()[0]
            ids = [r[0] for r in self.db.execute(
                "SELECT id FROM plant_samples WHERE batch_id = ? ORDER BY id", (batch_id,))]
            if len(ids) < 2:
                return []
            self.db.execute("DELETE FROM plant_batches WHERE batch_id = ?", (batch_id,))
            half = len(ids) // 2
            return [self._new_batch(gateway, now_iso, part) for part in (ids[:half], ids[half:])]

    def dead_letter(self, batch_id: str, reason: str) -> None:
        """Set a batch aside for a person to look at."""
        with self.outbox._tx():
            self.db.execute("UPDATE plant_batches SET state = 'dead', reason = ? "
                            "WHERE batch_id = ?", (reason[:2000], batch_id))

    def _make_room(self) -> None:
        """When the outbox is full, drop the oldest unsent samples (counted)."""
        if self.outbox.used_bytes() < self.outbox.max_bytes:
            return
        with self.outbox._tx():
            cur = self.db.execute(
                "DELETE FROM plant_samples WHERE id IN (SELECT id FROM plant_samples WHERE "
                "batch_id IS NULL ORDER BY id LIMIT max(1, (SELECT count(*) FROM plant_samples)"
                " / 100))")
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('dropped_plant_samples', ?) ON CONFLICT "
                "(key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
                (cur.rowcount,))
        log.error("outbox full: dropped the %d oldest unsent plant samples", cur.rowcount)

    def stats(self) -> dict:
        """Pending and dead-lettered plant samples, for the heartbeat."""
        pending = self.db.execute(
            "SELECT count(*), min(ts) FROM plant_samples LEFT JOIN plant_batches "
            "USING (batch_id) WHERE plant_batches.state IS NULL OR plant_batches.state = 'open'"
        ).fetchone()
        dead = self.db.execute(
            "SELECT count(*) FROM plant_batches WHERE state = 'dead'").fetchone()[0]
        dropped = self.db.execute(
            "SELECT value FROM meta WHERE key = 'dropped_plant_samples'").fetchone()
        return {"pending_samples": pending[0], "oldest_pending_ts": pending[1],
                "dead_letter_batches": dead, "dropped_samples": int(dropped[0]) if dropped else 0}


def status_report(status: OpenEMSStatus | None, queue: PlantQueue | None) -> dict:
    """The heartbeat's optional ``plant`` section."""
    report: dict = {}
    if status is not None:
        report["openems"] = {"ok": status.ok, "last_ok_at": status.last_ok_at,
                             "last_sample_ts": status.last_sample_ts,
                             "last_error": status.last_error, "errors": dict(status.errors),
                             "missing_channels": status.missing_channels}
    if queue is not None:
        report["outbox"] = queue.stats()
    return report

