"""Store and forward: every reading is committed to SQLite (WAL) before any upload.

A batch gets its id, its readings and its ``sent_at`` once, in one transaction, and
keeps them until the server has answered it; a retry after ``kill -9`` therefore
sends the very same body, which the contract makes safe to send again.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY, address INTEGER NOT NULL, ts TEXT NOT NULL, body TEXT NOT NULL,
    batch_id TEXT, UNIQUE (address, ts));
CREATE INDEX IF NOT EXISTS readings_batch ON readings (batch_id, id);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, sent_at TEXT NOT NULL,
    gateway TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'open', reason TEXT);
CREATE TABLE IF NOT EXISTS progress (address INTEGER PRIMARY KEY, last_ts TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, args TEXT NOT NULL, state TEXT NOT NULL,
    started_at TEXT, outcome TEXT, posted INTEGER NOT NULL DEFAULT 0);
"""

MAX_BATCH = 5000
WARN_FRACTION = 0.8


class Outbox:
    """The SQLite outbox; one instance per thread (SQLite connections are not shared)."""

    def __init__(self, path: str | Path, max_mb: float = 200.0):
        self.path = str(path)
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives a power cut, not just a crash of the process.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self._warned = False

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # -- writing readings --------------------------------------------------------------

    def add(self, readings: list[dict]) -> int:
        """Commit readings (and each meter's progress) in one transaction; returns how many."""
        if not readings:
            return 0
        self._make_room()
        rows = [(r["address"], r["ts"], json.dumps(r, separators=(",", ":"))) for r in readings]
        with self._tx():
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO readings (address, ts, body) VALUES (?, ?, ?)", rows)
            added = self.db.total_changes - before
            self.db.executemany(
                "INSERT INTO progress (address, last_ts) VALUES (?, ?) ON CONFLICT (address) "
                "DO UPDATE SET last_ts = max(last_ts, excluded.last_ts)",
                [(a, ts) for a, ts, _ in rows])
        self._check_warning()
        return added

    def progress(self) -> dict[int, str]:
        """The latest interval each meter has a committed reading for."""
        return dict(self.db.execute("SELECT address, last_ts FROM progress"))

    # -- batches -----------------------------------------------------------------------

    def next_batch(self, gateway: str, now_iso: str, limit: int = MAX_BATCH) -> dict | None:
        """The batch to send: the open one, else a new one of the oldest readings."""
        row = self.db.execute("SELECT batch_id FROM batches WHERE state = 'open' "
                              "ORDER BY created_at, rowid LIMIT 1").fetchone()
        if row is None:
            with self._tx():
                # Insertion order is time order, and (batch_id, id) is indexed: no sort of a
                # backlog of millions on a Pi.
                ids = [r[0] for r in self.db.execute(
                    "SELECT id FROM readings WHERE batch_id IS NULL ORDER BY id LIMIT ?",
                    (limit,))]
                if not ids:
                    return None
                batch_id = self._new_batch(gateway, now_iso, ids)
            row = (batch_id,)
        return self.batch(row[0])

    def has_open_batch(self) -> bool:
        """Whether a batch is built and not yet answered (it goes next, as it is)."""
        return self.db.execute(
            "SELECT 1 FROM batches WHERE state = 'open' LIMIT 1").fetchone() is not None

    def first_unbatched_ts(self) -> str | None:
        """The interval of the reading a new batch would start with (the oldest added)."""
        row = self.db.execute(
            "SELECT ts FROM readings WHERE batch_id IS NULL ORDER BY id LIMIT 1").fetchone()
        return row[0] if row else None

    def batch(self, batch_id: str) -> dict:
        """The exact body of a batch, as first built."""
        created, sent_at, gateway = self.db.execute(
            "SELECT created_at, sent_at, gateway FROM batches WHERE batch_id = ?",
            (batch_id,)).fetchone()
        readings = [json.loads(b) for (b,) in self.db.execute(
            "SELECT body FROM readings WHERE batch_id = ? ORDER BY id", (batch_id,))]
        return {"batch_id": batch_id, "gateway": gateway, "sent_at": sent_at,
                "readings": readings}

    def _new_batch(self, gateway: str, now_iso: str, ids: list[int]) -> str:
        batch_id = str(uuid.uuid4())
        self.db.execute("INSERT INTO batches (batch_id, created_at, sent_at, gateway) "
                        "VALUES (?, ?, ?, ?)", (batch_id, now_iso, now_iso, gateway))
        self.db.executemany("UPDATE readings SET batch_id = ? WHERE id = ?",
                            [(batch_id, i) for i in ids])
        return batch_id

    def ack(self, batch_id: str) -> None:
        """The server has the batch: forget it."""
        with self._tx():
            self.db.execute("DELETE FROM readings WHERE batch_id = ?", (batch_id,))
            self.db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))

    def split(self, batch_id: str, now_iso: str) -> list[str]:
        """Replace a batch by two halves with new ids (the server stored nothing of it)."""
        with self._tx():
            gateway = self.db.execute("SELECT gateway FROM batches WHERE batch_id = ?",
                                      (batch_id,)).fetchone()[0]
            ids = [r[0] for r in self.db.execute(
                "SELECT id FROM readings WHERE batch_id = ? ORDER BY id", (batch_id,))]
            if len(ids) < 2:
                return []
            self.db.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
            half = len(ids) // 2
            return [self._new_batch(gateway, now_iso, part) for part in (ids[:half], ids[half:])]

    def dead_letter(self, batch_id: str, reason: str) -> None:
        """Set a batch aside for a person to look at; it is never sent again on its own."""
        with self._tx():
            self.db.execute("UPDATE batches SET state = 'dead', reason = ? WHERE batch_id = ?",
                            (reason[:2000], batch_id))

    # -- bounded disk ------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of the database in use (freed pages are reused, so the file stops growing)."""
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        size = self.db.execute("PRAGMA page_size").fetchone()[0]
        return (pages - free) * size

    def _check_warning(self) -> None:
        used = self.used_bytes()
        if used >= WARN_FRACTION * self.max_bytes and not self._warned:
            log.warning("outbox uses %.2f of %.2f MB: the oldest unsent readings will be "
                        "dropped when it is full", used / 2**20, self.max_bytes / 2**20)
            self._warned = True
        elif used < WARN_FRACTION * self.max_bytes:
            self._warned = False

    def _make_room(self) -> None:
        used = self.used_bytes()
        while used >= self.max_bytes:
            dropped = self._drop_oldest(max(1, self.pending_count() // 100))
            if not dropped:
                break
            log.error("outbox full: dropped the %d oldest unsent readings", dropped)
            used = self.used_bytes()

    def _drop_oldest(self, count: int) -> int:
        with self._tx():
            cur = self.db.execute(
                "DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE batch_id IS NULL"
                " ORDER BY id LIMIT ?)", (count,))
            dropped = cur.rowcount
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('dropped_readings', ?) ON CONFLICT (key)"
                " DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value", (dropped,))
        return dropped

    def pending_count(self) -> int:
        """Readings not yet accepted by the server (dead letters excluded)."""
        return self.db.execute(
            "SELECT count(*) FROM readings LEFT JOIN batches USING (batch_id) "
            "WHERE batches.state IS NULL OR batches.state = 'open'").fetchone()[0]

    def stats(self) -> dict:
        """The heartbeat's ``outbox`` section (plus how full it is)."""
        oldest = self.db.execute(
            "SELECT min(ts) FROM readings LEFT JOIN batches USING (batch_id) "
            "WHERE batches.state IS NULL OR batches.state = 'open'").fetchone()[0]
        dead = self.db.execute("SELECT count(*) FROM batches WHERE state = 'dead'").fetchone()[0]
        dropped = self.db.execute(
            "SELECT value FROM meta WHERE key = 'dropped_readings'").fetchone()
        used = self.used_bytes()
        return {
            "pending_readings": self.pending_count(),
            "oldest_pending_ts": oldest,
            "dead_letter_batches": dead,
            "dropped_readings": int(dropped[0]) if dropped else 0,
            "disk_free_mb": shutil.disk_usage(Path(self.path).parent).free // 2**20,
            "used_mb": round(used / 2**20, 2),
            "full_warning": used >= WARN_FRACTION * self.max_bytes,
        }

    # -- commands (run at most once, even across restarts) -------------------------------

    def claim_command(self, command: dict, now_iso: str) -> bool:
        """Record a command as started; False if it was seen before (never run it twice)."""
        with self._tx():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO commands (id, type, args, state, started_at) "
                "VALUES (?, ?, ?, 'running', ?)",
                (str(command["id"]), str(command.get("type")),
                 json.dumps(command.get("args") or {}), now_iso))
        return cur.rowcount == 1

    def finish_command(self, command_id: str, outcome: dict) -> None:
        """Keep a command's outcome until it has been posted."""
        with self._tx():
            self.db.execute("UPDATE commands SET state = 'finished', outcome = ? WHERE id = ?",
                            (json.dumps(outcome), command_id))

    def interrupted_commands(self, now_iso: str) -> None:
        """Commands cut off by a restart are reported failed, not run again."""
        rows = self.db.execute("SELECT id, started_at FROM commands WHERE state = 'running'")
        for command_id, started in list(rows):
            self.finish_command(command_id, {
                "status": "failed", "started_at": started, "finished_at": now_iso,
                "result": {}, "error": "interrupted by a restart of the agent"})

    def unposted_outcomes(self) -> list[tuple[str, dict]]:
        """Finished commands whose outcome the server has not yet taken."""
        return [(i, json.loads(o)) for i, o in self.db.execute(
            "SELECT id, outcome FROM commands WHERE state = 'finished' AND posted = 0")]

    def mark_posted(self, command_id: str) -> None:
        """The server has a command's outcome."""
        with self._tx():
            self.db.execute("UPDATE commands SET posted = 1 WHERE id = ?", (command_id,))

    def _tx(self):
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (the module's autocommit is off)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False
