"""The SQLite outbox: WAL, stable batches, splitting, dead letters, bounded disk."""

import logging
import sqlite3
from datetime import UTC, datetime, timedelta

from edge_agent.outbox import Outbox


def ts(minutes: int) -> str:
    t = datetime(2026, 4, 4, tzinfo=UTC) + timedelta(minutes=minutes)
    return t.isoformat().replace("+00:00", "Z")


def readings(n, start=0, address=10):
    return [{"address": address, "ts": ts(start + i), "energy_kwh": 100.0 + i,
             "voltage_v": [230.0]} for i in range(n)]


def test_wal_and_commit_before_upload(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    assert box.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert box.add(readings(3)) == 3
    # Another connection (the link thread, or a restarted agent) sees them committed.
    other = sqlite3.connect(tmp_path / "o.sqlite3")
    assert other.execute("SELECT count(*) FROM readings").fetchone()[0] == 3
    assert box.progress() == {10: ts(2)}


def test_the_same_reading_is_never_stored_twice(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    box.add(readings(3))
    assert box.add(readings(3)) == 0
    assert box.pending_count() == 3


def test_a_batch_keeps_its_id_and_body_across_a_restart(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    box.add(readings(5))
    first = box.next_batch("gw", "2026-04-04T00:10:00Z", limit=3)
    assert len(first["readings"]) == 3
    box.close()
    again = Outbox(tmp_path / "o.sqlite3").next_batch("gw", "2026-04-04T00:20:00Z", limit=3)
    assert again == first  # same batch_id, same sent_at, same readings


def test_ack_split_and_dead_letter(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    box.add(readings(5))
    batch = box.next_batch("gw", "t0")
    halves = box.split(batch["batch_id"], "t1")
    assert len(halves) == 2
    sizes = [len(box.batch(b)["readings"]) for b in halves]
    assert sizes == [2, 3]
    box.dead_letter(halves[0], "HTTP 422")
    box.ack(halves[1])
    stats = box.stats()
    assert stats["dead_letter_batches"] == 1 and stats["pending_readings"] == 0
    assert box.next_batch("gw", "t2") is None  # dead letters are not resent on their own


def test_disk_is_bounded_with_an_early_warning_then_oldest_dropped(tmp_path, caplog):
    box = Outbox(tmp_path / "o.sqlite3", max_mb=0.25)
    caplog.set_level(logging.WARNING)
    for day in range(40):
        box.add(readings(60, start=day * 60, address=10 + day % 3))
        if box.stats()["full_warning"]:
            break
    assert any("will be dropped" in r.message for r in caplog.records)
    assert box.stats()["dropped_readings"] == 0  # warned before anything was lost
    for day in range(40, 120):
        box.add(readings(60, start=day * 60, address=10 + day % 3))
    stats = box.stats()
    assert stats["dropped_readings"] > 0
    assert box.used_bytes() <= box.max_bytes * 1.05
    oldest = box.db.execute("SELECT min(ts) FROM readings").fetchone()[0]
    newest = box.db.execute("SELECT max(ts) FROM readings").fetchone()[0]
    assert oldest > ts(0) and newest == ts(119 * 60 + 59)


def test_commands_are_claimed_once_and_interrupted_ones_reported(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    cmd = {"id": "c-1", "type": "scan", "args": {}}
    assert box.claim_command(cmd, "t0") is True
    assert box.claim_command(cmd, "t1") is False
    box.interrupted_commands("t2")
    [(cid, outcome)] = box.unposted_outcomes()
    assert cid == "c-1" and outcome["status"] == "failed"
    box.mark_posted("c-1")
    assert box.unposted_outcomes() == []
