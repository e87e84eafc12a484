"""The edge API, answer by answer, as the shared contract fixes it."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcoms.core.models import AuditEvent
from metering import services, tokens
from metering.lifecycle import Status
from metering.models import (
    Discovery,
    GatewayToken,
    HourlyUsage,
    MeterComms,
    QuarantinedReading,
    Reading,
)
from tests.metering.edge_fixtures import batch, reading

pytestmark = pytest.mark.django_db
URL = "/api/v1/edge/readings"


def post(client, bus, body, **headers):
    return client.post(
        URL, json.dumps(body), content_type="application/json", **bus.headers(), **headers
    )


# --- authentication -----------------------------------------------------------------------


def test_missing_unknown_and_revoked_tokens_get_401(client, bus):
    body = json.dumps(batch(reading()))
    assert client.post(URL, body, content_type="application/json").status_code == 401
    response = client.post(
        URL, body, content_type="application/json", **bus.headers("mcg_not-a-token")
    )
    assert response.status_code == 401
    tokens.token_revoke(gateway=bus.gateway)
    assert post(client, bus, batch(reading())).status_code == 401
    assert not Reading.objects.exists()


def test_tokens_are_stored_hashed(bus):
    stored = GatewayToken.objects.get()
    assert bus.token not in (stored.token_hash, stored.prefix) and len(stored.token_hash) == 64


def test_rotation_keeps_the_old_token_for_a_grace_period(client, bus):
    now = dt.datetime.now(dt.UTC)
    new = tokens.token_rotate(gateway=bus.gateway, now=now)
    assert tokens.gateway_for_token(bus.token, now=now + dt.timedelta(days=6)) == bus.gateway
    assert tokens.gateway_for_token(bus.token, now=now + dt.timedelta(days=8)) is None
    assert tokens.gateway_for_token(new, now=now + dt.timedelta(days=30)) == bus.gateway
    response = client.get("/api/v1/edge/config", **bus.headers(new))
    assert response.status_code == 200


def test_body_for_another_gateway_is_403(client, bus):
    response = post(client, bus, batch(reading(), gateway="someone-else"))
    assert response.status_code == 403
    assert not Reading.objects.exists()


# --- config ---------------------------------------------------------------------------------


def test_config_lists_the_meters_on_this_bus(client, bus):
    body = client.get("/api/v1/edge/config", **bus.headers()).json()
    assert body["gateway"] == "kla-block-a"
    assert body["serial"] == {"baudrate": 9600, "parity": "N", "stopbits": 2, "bytesize": 8}
    assert (body["poll_interval_s"], body["log_interval_s"]) == (10, 900)
    assert [(m["address"], m["model"]) for m in body["meters"]] == [
        (10, "DDSU666"),
        (100, "DTSU666"),
    ]
    assert body["meters"][1]["ct_ratio"] == 1.0


def test_config_version_moves_with_every_change(client, bus):
    def version():
        return client.get("/api/v1/edge/config", **bus.headers()).json()["version"]

    first = version()
    services.meter_update(meter=bus.three, energy_register="0x101E")
    assert version() == first + 1
    services.meter_update(meter=bus.three, notes="only a note")
    assert version() == first + 1
    services.gateway_update(gateway=bus.gateway, log_interval_s=300)
    assert version() == first + 2
    services.meter_move(meter=bus.single, status=Status.RETEST_NEEDED)
    body = client.get("/api/v1/edge/config", **bus.headers()).json()
    assert body["version"] == first + 3
    assert [m["address"] for m in body["meters"]] == [100]
    assert body["meters"][0]["energy_register"] == "0x101E"


# --- readings ---------------------------------------------------------------------------------


def test_a_batch_is_stored_and_answered(client, bus):
    body = batch(
        reading(),
        reading(
            address=100,
            energy=88210.25,
            voltage_v=[231.0, 229.8, 233.1],
            current_a=[12.1, 9.8, 11.0],
            power_kw=7.9,
        ),
    )
    response = post(client, bus, body)
    assert response.status_code == 200
    answer = response.json()
    assert answer == {
        "batch_id": body["batch_id"],
        "accepted": 2,
        "duplicates": 0,
        "rejected": [],
        "flagged": [],
    }
    three = Reading.objects.get(meter=bus.three)
    assert (three.voltage_l1, three.voltage_l3, three.current_l2) == (231.0, 233.1, 9.8)
    assert str(three.energy_kwh) == "88210.250"
    assert three.ts == dt.datetime(2026, 4, 4, 15, 15, tzinfo=dt.UTC)


def test_same_batch_again_gives_the_same_answer_and_stores_nothing(client, bus):
    body = batch(reading())
    first = post(client, bus, body).json()
    assert post(client, bus, body).json() == first
    assert Reading.objects.count() == 1


def test_same_batch_id_with_other_content_is_409(client, bus):
    body = batch(reading())
    post(client, bus, body)
    body["readings"][0]["energy_kwh"] = 1.0
    assert post(client, bus, body).status_code == 409


def test_a_repeated_reading_in_a_new_batch_is_a_duplicate(client, bus):
    post(client, bus, batch(reading()))
    answer = post(
        client, bus, batch(reading(), reading(ts="2026-04-04T15:30:00Z", energy=12345.8))
    ).json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 1)
    assert Reading.objects.count() == 2


def test_the_same_reading_twice_in_one_batch_is_stored_once(client, bus):
    answer = post(client, bus, batch(reading(), reading(energy=12345.7))).json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 1)
    assert str(Reading.objects.get().energy_kwh) == "12345.600"


def test_a_real_reading_replaces_a_server_estimate(client, bus):
    Reading.objects.create(
        meter=bus.single,
        ts=dt.datetime(2026, 4, 4, 15, 15, tzinfo=dt.UTC),
        energy_kwh=12345,
        kind="estimated",
        received_at=bus.gateway.created_at,
    )
    answer = post(client, bus, batch(reading())).json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 0)
    stored = Reading.objects.get()
    assert (stored.kind, str(stored.energy_kwh)) == ("real", "12345.600")


def test_unknown_address_is_rejected_and_kept(client, bus):
    answer = post(client, bus, batch(reading(), reading(address=55))).json()
    assert answer["accepted"] == 1
    assert answer["rejected"] == [{"index": 1, "reason": "no meter assigned at address 55"}]
    kept = QuarantinedReading.objects.get()
    assert (kept.address, kept.reason, kept.payload["energy_kwh"]) == (
        55,
        answer["rejected"][0]["reason"],
        12345.6,
    )


def test_a_month_without_a_partition_is_quarantined(client, bus):
    answer = post(client, bus, batch(reading(ts="2027-01-01T00:00:00Z"))).json()
    assert answer["accepted"] == 0
    assert "no partition for 2027-01" in answer["rejected"][0]["reason"]
    assert QuarantinedReading.objects.get().meter == bus.single


@pytest.mark.parametrize(
    ("readings", "reason"),
    [
        ([reading(voltage_v=[2309.0])], "impossible voltage 2309 V"),
        ([reading(frequency_hz=12.0)], "impossible frequency 12 Hz"),
        ([reading(power_factor=1.7)], "impossible power factor 1.7"),
        ([reading(energy=-1.0)], "negative energy"),
        (
            [
                reading(ts="2026-04-04T15:15:00Z"),
                reading(ts="2026-04-04T15:30:00Z", energy=12000.0),
            ],
            "energy went backwards from 12345.600 to 12000.000 kWh",
        ),
        (
            [
                reading(ts="2026-04-04T15:15:00Z"),
                reading(ts="2026-04-04T15:30:00Z", energy=12400.0),
            ],
            "exceeds the load limit",
        ),
        ([reading(ts="2030-04-04T15:15:00Z")], "in the future"),
        ([reading(ts="2026-03-20T10:00:00Z")], "timestamp before installation"),
    ],
)
def test_invalid_readings_are_kept_flagged_with_the_reason(client, bus, readings, reason):
    from metering import partitions

    partitions.ensure_months([dt.date(2030, 4, 1)])
    answer = post(client, bus, batch(*readings)).json()
    assert answer["accepted"] == len(readings)
    assert answer["flagged"] and reason in answer["flagged"][-1]["reason"]
    flagged = Reading.objects.get(quality="flagged")
    assert reason in flagged.flags and not flagged.billable


def test_values_merely_outside_the_nominal_band_are_valid(client, bus):
    answer = post(client, bus, batch(reading(voltage_v=[190.0], frequency_hz=49.2))).json()
    assert answer["flagged"] == [] and Reading.objects.get().quality == "valid"


def test_too_many_readings_is_413(client, bus):
    body = batch(*[reading(ts="2026-04-04T15:15:00Z") for _ in range(5001)])
    assert post(client, bus, body).status_code == 413
    assert not Reading.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"readings": []}',
        b'{"batch_id": "x", "readings": []}',
        json.dumps({"batch_id": str(uuid.uuid4()), "readings": {}}).encode(),
        b'{"batch_id": "0f8e2a4c-5b7d-4f1e-9a33-2c6d8e1b7a90", "readings": [{"energy_kwh": NaN}]}',
    ],
)
def test_malformed_bodies_are_400_and_store_nothing(client, bus, raw):
    response = client.post(URL, raw, content_type="application/json", **bus.headers())
    assert response.status_code == 400
    assert not Reading.objects.exists() and not QuarantinedReading.objects.exists()


def test_a_malformed_reading_is_rejected_alone(client, bus):
    answer = post(client, bus, batch(reading(), {"address": 10, "ts": "yesterday"})).json()
    assert answer["accepted"] == 1
    assert "ts 'yesterday' is not RFC 3339" in answer["rejected"][0]["reason"]


def test_a_register_beyond_any_meter_is_rejected_not_a_server_error(client, bus):
    answer = post(client, bus, batch(reading(energy=1e20))).json()
    assert answer["accepted"] == 0
    assert "beyond any meter register" in answer["rejected"][0]["reason"]


def test_gzip_bodies_are_accepted(client, bus):
    raw = gzip.compress(json.dumps(batch(reading())).encode())
    response = client.post(
        URL, raw, content_type="application/json", HTTP_CONTENT_ENCODING="gzip", **bus.headers()
    )
    assert response.status_code == 200 and response.json()["accepted"] == 1


def test_first_valid_readings_commission_the_meter(client, bus, django_capture_on_commit_callbacks):
    assert bus.single.status == Status.INSTALLED
    with django_capture_on_commit_callbacks(execute=True):
        post(client, bus, batch(reading()))
    bus.single.refresh_from_db()
    bus.three.refresh_from_db()
    assert bus.single.status == Status.COMMISSIONED
    assert bus.three.status == Status.INSTALLED  # no reading from it yet
    event = bus.single.events.last()
    assert event.by_name == "gateway kla-block-a" and "first valid readings" in event.note
    transitions = AuditEvent.objects.filter(object_type="metering.meter", action="transition")
    audit = transitions.order_by("id").last()
    assert (audit.channel, audit.actor_label) == ("api", "gateway kla-block-a")


def test_readings_update_last_values_and_hourly_usage(
    client, bus, django_capture_on_commit_callbacks
):
    readings = [
        reading(ts=f"2026-04-04T{h:02d}:{m:02d}:00Z", energy=100 + 0.1 * n)
        for n, (h, m) in enumerate((h, m) for h in (10, 11) for m in (0, 15, 30, 45))
    ]
    with django_capture_on_commit_callbacks(execute=True):
        post(client, bus, batch(*readings))
    comms = MeterComms.objects.get(meter=bus.single)
    assert comms.last_reading_ts == dt.datetime(2026, 4, 4, 11, 45, tzinfo=dt.UTC)
    hours = dict(HourlyUsage.objects.filter(meter=bus.single).values_list("hour", "kwh"))
    assert {h.hour: str(k) for h, k in hours.items()} == {10: "0.400", 11: "0.300"}


# --- heartbeat, commands, discoveries ---------------------------------------------------------

HEARTBEAT = {
    "gateway": "kla-block-a",
    "agent_version": "1.0.0",
    "config_version": 1,
    "uptime_s": 86400,
    "clock_synced": True,
    "outbox": {"pending_readings": 0, "oldest_pending_ts": None},
    "bus": {"port_open": True, "last_sweep_s": 6.4},
    "meters": [
        {
            "address": 10,
            "ok": False,
            "last_ok_at": "2026-04-04T15:14:50Z",
            "errors_24h": {"timeout": 3, "crc": 0},
            "last_error": "timeout",
        }
    ],
}


def heartbeat(client, bus):
    return client.post(
        "/api/v1/edge/heartbeat",
        json.dumps(HEARTBEAT),
        content_type="application/json",
        **bus.headers(),
    )


def test_heartbeat_is_recorded_and_answers_the_config_version(client, bus):
    answer = heartbeat(client, bus).json()
    assert answer == {"config_version": bus.gateway.config_version, "commands": []}
    bus.gateway.refresh_from_db()
    assert bus.gateway.last_heartbeat_at and bus.gateway.last_heartbeat["uptime_s"] == 86400
    comms = MeterComms.objects.get(meter=bus.single)
    assert (comms.ok, comms.last_error, comms.errors_24h["timeout"]) == (False, "timeout", 3)


def test_commands_ride_on_heartbeats_and_their_results_come_back(client, bus):
    from metering import edge

    command = edge.command_create(gateway=bus.gateway, type="scan", args={"from": 2, "to": 247})
    answer = heartbeat(client, bus).json()
    assert answer["commands"] == [
        {"id": command.wire_id, "type": "scan", "args": {"from": 2, "to": 247}}
    ]
    command.refresh_from_db()
    assert command.status == "sent"
    result = {
        "status": "done",
        "started_at": "2026-04-04T15:20:00Z",
        "finished_at": "2026-04-04T15:21:00Z",
        "result": {"found": [12]},
    }
    url = f"/api/v1/edge/commands/{command.wire_id}/result"
    response = client.post(
        url, json.dumps(result), content_type="application/json", **bus.headers()
    )
    assert response.status_code == 200
    command.refresh_from_db()
    assert (command.status, command.result) == ("done", {"found": [12]})
    assert heartbeat(client, bus).json()["commands"] == []
    missing = client.post(
        "/api/v1/edge/commands/c-999/result",
        json.dumps(result),
        content_type="application/json",
        **bus.headers(),
    )
    assert missing.status_code == 404


def test_discoveries_are_listed_for_acceptance(client, bus):
    body = {
        "gateway": "kla-block-a",
        "scanned_at": "2026-04-04T15:21:00Z",
        "found": [{"address": 12, "model_guess": "DDSU666", "voltage_v": 231.2, "serial": None}],
    }
    response = client.post(
        "/api/v1/edge/discoveries",
        json.dumps(body),
        content_type="application/json",
        **bus.headers(),
    )
    assert response.status_code == 200
    found = Discovery.objects.get()
    assert (found.address, found.model_guess, found.voltage_v, found.status) == (
        12,
        "DDSU666",
        231.2,
        "new",
    )


def test_schema_documents_the_edge_api(client, org):
    client.force_login(org.admin)
    schema = client.get("/api/schema/").content.decode()
    for endpoint in (
        "/api/v1/edge/readings",
        "/api/v1/edge/config",
        "/api/v1/edge/heartbeat",
        "/api/v1/edge/discoveries",
        "/api/v1/edge/commands/{command_id}/result",
    ):
        assert endpoint in schema


def test_edge_gateway_command_prints_the_token_last(org, capsys):
    call_command("edge_gateway", "create", "--site", "kla", "--name", "kla-bus-9")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert tokens.gateway_for_token(token).name == "kla-bus-9"
    call_command("edge_gateway", "revoke", "--name", "kla-bus-9")
    assert tokens.gateway_for_token(token) is None


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(
        st.one_of(
            st.none(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(-500, 500),
            st.text(max_size=3),
        ),
        max_size=4,
    ),
)
KEYS = st.sampled_from(
    [
        "address",
        "ts",
        "energy_kwh",
        "export_kwh",
        "voltage_v",
        "current_a",
        "power_kw",
        "power_factor",
        "frequency_hz",
        "extra",
    ]
)
READINGS = st.lists(
    st.one_of(
        st.dictionaries(KEYS, VALUES, max_size=9),
        st.builds(
            lambda address, minute, energy: reading(
                address=address, ts=f"2026-04-04T15:{minute:02d}:00Z", energy=energy
            ),
            st.sampled_from([1, 10, 100, 247]),
            st.integers(0, 59),
            st.floats(-10, 1e12, allow_nan=False),
        ),
        VALUES,
    ),
    max_size=6,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(readings=READINGS)
def test_any_readings_get_an_answer_never_a_server_error(client, bus, readings):
    body = batch(*readings)
    response = post(client, bus, body)
    if "\\u0000" in json.dumps(body).lower():
        # A NUL in any text is refused whole (PostgreSQL can store none), never a 500.
        assert response.status_code == 400 and b"NUL" in response.content
        return
    assert response.status_code == 200, response.content[:500]
    answer = response.json()
    assert answer["accepted"] + answer["duplicates"] + len(answer["rejected"]) == len(readings)


def test_a_malformed_discovery_or_command_result_is_400(client, bus):
    from metering import edge

    response = client.post(
        "/api/v1/edge/discoveries",
        json.dumps({"found": "x"}),
        content_type="application/json",
        **bus.headers(),
    )
    assert response.status_code == 400 and not Discovery.objects.exists()
    command = edge.command_create(gateway=bus.gateway, type="scan", args={})
    response = client.post(
        f"/api/v1/edge/commands/{command.wire_id}/result",
        json.dumps({"status": "maybe"}),
        content_type="application/json",
        **bus.headers(),
    )
    assert response.status_code == 400
    command.refresh_from_db()
    assert command.status == "pending"
