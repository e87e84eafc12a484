"""Every server answer of the contract, handled as the contract says (time is a FakeClock)."""

import json

import pytest

from edge_agent.clock import FakeClock
from edge_agent.outbox import Outbox
from edge_agent.uploader import AUTH_HOLD_S, Api, Uploader, retry_after_s, upload_offset

from .test_outbox import readings


@pytest.fixture
def rig(tmp_path, platform):
    token = {"value": "secret"}
    clock = FakeClock()
    box = Outbox(tmp_path / "o.sqlite3")
    api = Api(platform.url, lambda: token["value"], gzip_bodies=True)
    up = Uploader(api, box, lambda: "kla-block-a", clock, rng=lambda: 1.0)
    yield up, box, clock, platform, token
    api.close()
    box.close()


def test_200_done_gzip_body_and_blind_retry_is_safe(rig):
    up, box, clock, platform, _ = rig
    box.add(readings(4))
    assert up.step() == "sent"
    assert len(platform.stored) == 4 and box.pending_count() == 0
    batch_id = next(iter(platform.batches))
    # Resending the same batch (as after a crash before the answer) changes nothing.
    status, answer = platform.readings(json.loads(json.dumps(
        {"batch_id": batch_id, "gateway": "kla-block-a",
         "readings": json.loads(platform.batches[batch_id][0])})))
    assert status == 200 and answer["accepted"] == 4 and len(platform.stored) == 4


def test_a_body_with_nan_is_never_sent(rig):
    up, *_ = rig
    with pytest.raises(ValueError):
        up.api.post("/readings", {"x": float("nan")})


def test_5xx_and_no_answer_retry_with_growing_jittered_backoff(rig):
    up, box, clock, platform, _ = rig
    box.add(readings(2))
    platform.force(503, times=3)
    delays = []
    for _ in range(3):
        assert up.step() == "retry"
        delays.append(up.status.next_attempt - clock.monotonic())
        assert up.step() == "wait"  # nothing is sent before the backoff is over
        clock.advance(delays[-1])
    assert delays == [2.0, 4.0, 8.0]  # rng=1.0: the top of each jitter range
    assert up.step() == "sent" and len(platform.stored) == 2
    assert up.status.failures == 0


def test_jitter_spreads_retries(rig):
    up, box, clock, platform, _ = rig
    up.rng = lambda: 0.0
    box.add(readings(1))
    platform.force(500)
    up.step()
    assert up.status.next_attempt - clock.monotonic() == 1.0  # half of the 2 s step


def test_429_honours_retry_after(rig):
    up, box, clock, platform, _ = rig
    box.add(readings(2))
    platform.force(429, {"Retry-After": "120"})
    assert up.step() == "retry"
    clock.advance(119)
    assert up.step() == "wait"
    clock.advance(1)
    assert up.step() == "sent"


def test_retry_after_as_http_date():
    class R:
        headers = {"Retry-After": "Sat, 04 Apr 2026 15:16:00 GMT"}
    assert retry_after_s(R(), FakeClock().now()) == 70.0  # FakeClock starts at 15:14:50


def test_413_splits_until_batches_fit(rig):
    up, box, clock, platform, _ = rig
    platform.max_batch = 3
    box.add(readings(10))
    outcomes = [up.step() for _ in range(12)]
    assert outcomes.count("split") >= 2
    assert len(platform.stored) == 10 and box.pending_count() == 0
    assert platform.statuses("/api/v1/edge/readings").count(413) == outcomes.count("split")


def test_401_holds_everything_until_the_token_is_fixed(rig, caplog):
    up, box, clock, platform, token = rig
    box.add(readings(3))
    token["value"] = "revoked"
    assert up.step() == "held"
    assert "REFUSES THIS GATEWAY'S TOKEN" in caplog.text
    assert box.pending_count() == 3 and box.stats()["dead_letter_batches"] == 0
    clock.advance(AUTH_HOLD_S / 2)
    assert up.step() == "wait"  # still held: no hammering with a bad token
    token["value"] = "secret"  # the token file was fixed
    assert up.step() == "sent" and len(platform.stored) == 3


@pytest.mark.parametrize("status", [400, 403, 409, 422])
def test_other_4xx_dead_letter_kept_for_a_person(rig, status):
    up, box, clock, platform, _ = rig
    box.add(readings(3))
    platform.force(status)
    assert up.step() == "dead"
    stats = box.stats()
    assert stats["dead_letter_batches"] == 1 and stats["pending_readings"] == 0
    assert box.db.execute("SELECT count(*) FROM readings").fetchone()[0] == 3  # still kept
    box.add(readings(1, start=100))
    assert up.step() == "sent" and len(platform.stored) == 1  # the rest flows on


def test_real_403_and_409_from_the_platform(rig):
    up, box, clock, platform, _ = rig
    up.gateway_source = lambda: "someone-else"
    box.add(readings(1))
    assert up.step() == "dead"
    assert platform.statuses("/api/v1/edge/readings") == [403]


def test_server_down_then_back_every_reading_arrives_once(rig):
    up, box, clock, platform, _ = rig
    port = platform.port
    box.add(readings(5))
    platform.stop()
    for _ in range(6):  # down for a long time: backoff grows to its cap
        assert up.step() == "retry"
        clock.advance(up.status.next_attempt - clock.monotonic())
    assert up.status.next_attempt - clock.monotonic() <= 300
    box.add(readings(5, start=5))
    platform.start(port)
    assert up.drain() == "idle"
    assert len(platform.stored) == 10 and platform.duplicates == 0 and platform.conflicts == 0


def test_rejected_readings_are_logged_and_the_batch_is_done(rig, caplog, monkeypatch):
    up, box, clock, platform, _ = rig
    box.add(readings(2))
    original = platform.readings

    def flagging(body):
        status, answer = original(body)
        return status, {**answer, "rejected": [
            {"index": 1, "reason": "no meter assigned at address 10"}, {"index": 99}, "odd"]}

    monkeypatch.setattr(platform, "readings", flagging)
    assert up.step() == "sent"
    assert "no meter assigned at address 10" in caplog.text
    assert box.pending_count() == 0


def test_a_server_down_for_days(rig):
    up, box, clock, platform, _ = rig
    port = platform.port
    platform.stop()
    attempts = 0
    for quarter in range(5 * 96):  # 12 meters every 15 minutes, for five days
        box.add([r for a in range(1, 13) for r in readings(1, start=quarter * 15, address=a)])
        end = clock.monotonic() + 900
        while True:
            if up.step() == "retry":
                attempts += 1
                assert up.status.next_attempt - clock.monotonic() <= 300  # capped backoff
            if up.status.next_attempt > end:
                break
            clock.advance(up.status.next_attempt - clock.monotonic())
        clock.advance(end - clock.monotonic())
    assert attempts > 5 * 86400 / 300  # kept trying every few minutes, never gave up
    assert box.pending_count() == 5 * 96 * 12
    platform.start(port)
    clock.advance(300)
    assert up.drain() == "idle"
    assert len(platform.stored) == 5 * 96 * 12 and platform.duplicates == 0
    assert all(len(json.loads(content)) <= 5000 for content, _ in platform.batches.values())


def test_upload_offsets_spread_a_fleet_evenly_and_stay_fixed_per_gateway():
    names = [f"site-{n // 3:03d}-gw{n % 3}" for n in range(1000)]
    offsets = [upload_offset(name, 60, 900) for name in names]
    assert all(0 <= o < 60 for o in offsets)
    per_6s = [sum(1 for o in offsets if k * 6 <= o < (k + 1) * 6) for k in range(10)]
    assert min(per_6s) > 60 and max(per_6s) < 140, per_6s  # ~100 in each tenth
    assert upload_offset(names[0], 60, 900) == offsets[0]  # the same every interval
    assert len(set(offsets)) == 1000
    # Never more than half the interval, nothing without a spread or a name.
    assert all(upload_offset(name, 60, 30) < 15 for name in names[:50])
    assert upload_offset(names[0], 0, 900) == 0 and upload_offset(None, 60, 900) == 0


def test_a_fresh_interval_is_held_a_built_batch_never(rig):
    up, box, clock, platform, _ = rig  # 15:14:50
    up.hold_s = lambda: 30.0
    box.add(readings(1, start=15 * 60 + 15))  # the 15:15 reading
    clock.advance(30)  # 15:15:20
    assert up.step() == "wait" and not platform.stored
    clock.advance(10)  # 15:15:30: its 30 s are over
    platform.force(503)
    assert up.step() == "retry"  # built and sent: from now on retried as it is, unheld
    box.add(readings(1, start=15 * 60 + 16))  # 15:16, fresh, but not in that batch
    clock.advance(31)  # 15:16:01
    up.status.next_attempt = 0.0
    assert up.step() == "sent" and len(platform.stored) == 1
    assert up.step() == "wait"  # the 15:16 reading waits for its own 30 s
    clock.advance(29)
    assert up.step() == "sent" and len(platform.stored) == 2
