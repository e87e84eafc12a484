"""The commissioning portal: meters onto a bus, commands to the Pi, discoveries, the bus's
health, the gateway's token and the review of flagged readings — through the pages and
the edge API, as a site manager and a Pi would use them."""

from __future__ import annotations

import datetime as dt
import html
import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from mcoms.core import clock
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from metering import commissioning, services, tokens
from metering.lifecycle import Status
from metering.models import (
    Discovery,
    EdgeCommand,
    GatewayToken,
    HourlyUsage,
    Meter,
    MeterComms,
    Reading,
)
from tests import factories
from tests.metering.edge_fixtures import batch, reading

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@pytest.fixture
def clock_at(monkeypatch):
    """Set the time the platform sees (pages and edge API alike)."""
    state: dict = {}
    monkeypatch.setattr(clock, "now", lambda: state.get("now") or timezone.now())

    def set_now(when: dt.datetime) -> None:
        state["now"] = when

    return set_now


def edge_post(client, bus, path: str, body: dict):
    return client.post(
        f"/api/v1/edge/{path}", json.dumps(body), content_type="application/json", **bus.headers()
    )


def config(client, bus) -> dict:
    return client.get("/api/v1/edge/config", **bus.headers()).json()


def shipped_meter(site, address: int, model: str = "DDSU666", at=None) -> Meter:
    at = at or dt.datetime(2026, 3, 25, tzinfo=UTC)
    meter = factories.meter(model, now=at)
    with acting_as(label="test setup"):
        meter = services.meter_assign(meter=meter, site=site, address=address, now=at)
        for step in (Status.CONVERTED, Status.SHIPPED):
            meter = services.meter_move(meter=meter, status=step, now=at)
    return meter


def url(name: str, *args) -> str:
    return reverse(f"metering:{name}", args=args)


def shown_token(text: str) -> str:
    return text.split('id="token"')[1].split(">", 1)[1].split("</textarea>")[0]


def page_text(response) -> str:
    return html.unescape(response.content.decode())


# --- 1. a meter onto the bus, then commissioned by its first readings -----------------------------


def test_a_manager_puts_a_shipped_meter_on_the_bus_and_its_readings_commission_it(
    client, client_for, org, bus, clock_at, django_capture_on_commit_callbacks
):
    meter = shipped_meter(org.block_a, 12)
    manager = client_for(org.site_manager)
    before = config(client, bus)["version"]
    panel = page_text(manager.get(url("gateway_panel", bus.gateway.pk)))
    assert f"12 · {meter.serial} (shipped)" in panel

    clock_at(dt.datetime(2026, 4, 4, 12, 0, tzinfo=UTC))
    response = manager.post(
        url("bus_install", bus.gateway.pk), {"meter": meter.pk, "by_name": "Okello"}, follow=True
    )
    assert f"Meter {meter.serial} is installed at address 12" in page_text(response)
    meter.refresh_from_db()
    assert (meter.status, meter.gateway, meter.modbus_address) == (
        Status.INSTALLED,
        bus.gateway,
        12,
    )
    steps = list(meter.events.values_list("to_status", "by_name"))[-2:]
    assert steps == [(Status.SHIPPED, "test setup"), (Status.INSTALLED, "Okello")]
    body = config(client, bus)
    assert body["version"] > before
    assert [m["address"] for m in body["meters"]] == [10, 12, 100]

    clock_at(dt.datetime(2026, 4, 4, 16, 0, tzinfo=UTC))
    with django_capture_on_commit_callbacks(execute=True):
        answer = edge_post(client, bus, "readings", batch(reading(address=12))).json()
    assert (answer["accepted"], answer["rejected"], answer["flagged"]) == (1, [], [])
    meter.refresh_from_db()
    assert meter.status == Status.COMMISSIONED


def test_putting_a_meter_on_a_full_bus_is_refused_with_the_limit(client, client_for, org, bus):
    services.gateway_update(gateway=bus.gateway, meter_limit=2)
    meter = shipped_meter(org.block_a, 12)
    before = config(client, bus)["version"]
    response = client_for(org.site_manager).post(
        url("bus_install", bus.gateway.pk), {"meter": meter.pk}, follow=True
    )
    assert "Bus kla-block-a already has 2 meters (limit 2)." in page_text(response)
    meter.refresh_from_db()
    assert meter.status == Status.SHIPPED and meter.gateway is None
    assert config(client, bus)["version"] == before


def test_the_default_bus_limit_is_32(org):
    with acting_as(label="test setup"):
        gateway = services.gateway_create(site=org.block_b, name="klb-1")
    assert gateway.meter_limit == 32


def test_a_meter_planned_for_another_site_is_not_offered_nor_accepted(client_for, org, bus):
    other = shipped_meter(org.block_b, 12)
    manager = client_for(org.admin)
    assert other.serial not in page_text(manager.get(url("gateway_panel", bus.gateway.pk)))
    response = manager.post(url("bus_install", bus.gateway.pk), {"meter": other.pk}, follow=True)
    assert "Choose a meter of this site" in page_text(response)
    with pytest.raises(Exception, match="planned for Block B, not for Block A"):
        commissioning.bus_install(gateway=bus.gateway, meter=other)


# --- 2. commands to the Pi and what its scans found -----------------------------------------------


def test_commands_from_the_page_ride_on_the_heartbeat_and_show_their_result(
    client, client_for, org, bus
):
    manager = client_for(org.site_manager)
    response = manager.post(
        url("command_new", bus.gateway.pk), {"type": "scan", "start": 2, "end": 60}, follow=True
    )
    command = EdgeCommand.objects.get()
    assert f"Scan the bus ({command.wire_id}) waits" in page_text(response)
    assert (command.args, command.created_by) == ({"from": 2, "to": 60}, org.site_manager)
    assert AuditEvent.objects.filter(object_type="metering.edgecommand").exists()
    listing = page_text(manager.get(url("gateway_commands", bus.gateway.pk)))
    assert 'hx-trigger="every 5s"' in listing and "Waiting for the gateway" in listing

    answer = edge_post(client, bus, "heartbeat", HEARTBEAT).json()
    assert answer["commands"] == [{"id": command.wire_id, "type": "scan", "args": command.args}]
    assert "Sent to the gateway" in page_text(manager.get(url("gateway_commands", bus.gateway.pk)))
    edge_post(
        client,
        bus,
        f"commands/{command.wire_id}/result",
        {"status": "done", "result": {"found": [10, 12, 100]}},
    )
    listing = page_text(manager.get(url("gateway_commands", bus.gateway.pk)))
    assert "found: [10, 12, 100]" in listing and "Done" in listing
    assert "every 5s" not in listing


@pytest.mark.parametrize(
    ("post", "args"),
    [
        ({"type": "read", "address": 10}, {"address": 10}),
        ({"type": "probe", "address": 12}, {"address": 12}),
        (
            {"type": "set_address", "model": "DDSU666", "start": 1, "end": 12},
            {"model": "DDSU666", "from": 1, "to": 12},
        ),
    ],
)
def test_read_probe_and_set_address_commands_carry_the_contract_arguments(
    client_for, org, bus, post, args
):
    client_for(org.site_manager).post(url("command_new", bus.gateway.pk), post)
    command = EdgeCommand.objects.get()
    assert (command.type, command.args) == (post["type"], args)


@pytest.mark.parametrize(
    ("post", "message"),
    [
        ({"type": "scan", "start": 90, "end": 20}, "Scan from must not be above scan to."),
        ({"type": "read"}, "Address: give an address between 1 and 247."),
        (
            {"type": "set_address", "model": "DDSU666", "start": 1, "end": 10},
            "Address 10 is taken on bus kla-block-a by meter",
        ),
        (
            {"type": "set_address", "model": "DDSU666", "start": 12, "end": 1},
            "Address 1 is the factory default",
        ),
        (
            {"type": "set_address", "model": "DDSU666", "start": 1, "end": 150},
            "150 is outside Block A's range for a DDSU666 (10–99).",
        ),
        ({"type": "set_address", "start": 1, "end": 12}, "needs the meter model"),
    ],
)
def test_bad_command_arguments_are_refused_with_a_reason(client_for, org, bus, post, message):
    response = client_for(org.site_manager).post(
        url("command_new", bus.gateway.pk), post, follow=True
    )
    assert message in page_text(response)
    assert not EdgeCommand.objects.exists()


def found(client, bus, *entries, at="2026-04-04T15:21:00Z") -> None:
    body = {"gateway": "kla-block-a", "scanned_at": at, "found": list(entries)}
    assert edge_post(client, bus, "discoveries", body).status_code == 200


def test_a_discovery_is_accepted_as_a_new_meter_with_its_serial(client, client_for, org, bus):
    found(client, bus, {"address": 12, "model_guess": "DDSU666", "voltage_v": 229.0})
    at = "2026-04-04T15:40:00Z"
    found(client, bus, {"address": 12, "model_guess": "DDSU666", "voltage_v": 231.2}, at=at)
    discovery = Discovery.objects.get(voltage_v=231.2)  # the later scan
    manager = client_for(org.site_manager)
    panel = page_text(manager.get(url("gateway_panel", bus.gateway.pk)))
    assert "Address 12" in panel and "231.2 V" in panel and "Accept as a meter" in panel
    assert panel.count("Address 12") == 1  # found by two scans, listed once
    accept = url("discovery_accept", bus.gateway.pk, discovery.pk)
    prefix = f"d{discovery.pk}-"

    response = manager.post(
        accept, {prefix + "serial": "20032201669", prefix + "model": "DDSU666"}, follow=True
    )
    assert "A CHINT serial is exactly 12 digits" in page_text(response)
    assert not Meter.objects.filter(serial="20032201669").exists()

    response = manager.post(
        accept,
        {
            prefix + "serial": "200322016690",
            prefix + "model": "DDSU666",
            prefix + "label": "Shop 3",
        },
        follow=True,
    )
    assert "Meter 200322016690 is installed at address 12" in page_text(response)
    meter = Meter.objects.get(serial="200322016690")
    assert (meter.status, meter.gateway, meter.modbus_address, meter.label) == (
        Status.INSTALLED,
        bus.gateway,
        12,
        "Shop 3",
    )
    assert set(Discovery.objects.values_list("status", "meter")) == {
        (Discovery.Status.ACCEPTED, meter.pk)
    }
    assert 12 in [m["address"] for m in config(client, bus)["meters"]]
    assert AuditEvent.objects.filter(object_type="metering.discovery", note__contains="accepted")


def test_a_discovery_links_the_meter_planned_at_its_address(client, client_for, org, bus):
    planned = shipped_meter(org.block_a, 12)
    found(client, bus, {"address": 12, "model_guess": "DDSU666"})
    discovery = Discovery.objects.get()
    manager = client_for(org.site_manager)
    panel = page_text(manager.get(url("gateway_panel", bus.gateway.pk)))
    assert f"Planned here: meter {planned.serial}" in panel
    assert f'value="{planned.serial}"' in panel  # the serial is filled in
    count = Meter.objects.count()
    prefix = f"d{discovery.pk}-"
    manager.post(
        url("discovery_accept", bus.gateway.pk, discovery.pk),
        {prefix + "serial": planned.serial, prefix + "model": "DDSU666"},
    )
    planned.refresh_from_db()
    assert (planned.status, planned.gateway) == (Status.INSTALLED, bus.gateway)
    assert Meter.objects.count() == count


def test_a_discovery_at_a_taken_address_is_refused_and_can_be_dismissed(
    client, client_for, org, bus
):
    found(client, bus, {"address": 10, "model_guess": "DDSU666"})
    discovery = Discovery.objects.get()
    manager = client_for(org.site_manager)
    panel = page_text(manager.get(url("gateway_panel", bus.gateway.pk)))
    assert "Already on this bus: meter" in panel and bus.single.serial in panel
    prefix = f"d{discovery.pk}-"
    response = manager.post(
        url("discovery_accept", bus.gateway.pk, discovery.pk),
        {prefix + "serial": "200322099999", prefix + "model": "DDSU666"},
        follow=True,
    )
    assert f"Address 10 is taken on bus kla-block-a by meter {bus.single.serial}." in page_text(
        response
    )
    assert not Meter.objects.filter(serial="200322099999").exists()

    manager.post(url("discovery_dismiss", bus.gateway.pk, discovery.pk))
    discovery.refresh_from_db()
    assert discovery.status == Discovery.Status.DISMISSED
    assert "Nothing new" in page_text(manager.get(url("gateway_panel", bus.gateway.pk)))
    audit = AuditEvent.objects.get(object_type="metering.discovery")
    assert (audit.before["status"], audit.after["status"], audit.actor) == (
        "new",
        "dismissed",
        org.site_manager,
    )


def test_a_meter_planned_at_another_address_is_not_linked_to_a_discovery(
    client, client_for, org, bus
):
    planned = shipped_meter(org.block_a, 13)
    found(client, bus, {"address": 12, "model_guess": "DDSU666"})
    discovery = Discovery.objects.get()
    prefix = f"d{discovery.pk}-"
    response = client_for(org.site_manager).post(
        url("discovery_accept", bus.gateway.pk, discovery.pk),
        {prefix + "serial": planned.serial, prefix + "model": "DDSU666"},
        follow=True,
    )
    assert "is planned at address 13 but answered at 12" in page_text(response)
    planned.refresh_from_db()
    assert planned.status == Status.SHIPPED


# --- 3. the bus's health and the Pi's heartbeat ---------------------------------------------------

HEARTBEAT = {
    "gateway": "kla-block-a",
    "agent_version": "1.2.3",
    "config_version": 1,
    "uptime_s": 86400,
    "clock_synced": True,
    "outbox": {"pending_readings": 7, "oldest_pending_ts": None},
    "bus": {"port_open": True, "last_sweep_s": 6.4},
    "meters": [
        {
            "address": 100,
            "ok": False,
            "last_ok_at": "2026-04-04T10:00:00Z",
            "errors_24h": {"timeout": 3, "crc": 0},
            "last_error": "timeout",
        }
    ],
}


def test_the_panel_shows_each_meter_online_or_offline_with_values_errors_and_heartbeat(
    client, client_for, org, bus, clock_at
):
    clock_at(dt.datetime(2026, 4, 4, 15, 20, tzinfo=UTC))
    edge_post(client, bus, "readings", batch(reading(address=10, ts="2026-04-04T15:15:00Z")))
    edge_post(
        client,
        bus,
        "readings",
        batch(reading(address=100, ts="2026-04-04T14:30:00Z", energy=88210.25)),
    )
    edge_post(client, bus, "heartbeat", HEARTBEAT)

    clock_at(dt.datetime(2026, 4, 4, 15, 45, tzinfo=UTC))
    panel = page_text(client_for(org.agent).get(url("gateway_panel", bus.gateway.pk)))
    single_row, three_row = panel.split(bus.single.serial)[1], panel.split(bus.three.serial)[1]
    assert single_row.index("online") < single_row.index("</tr>")
    assert three_row.index("offline") < three_row.index("</tr>")
    assert "1 of 2 online" in panel
    assert "Energy 12345.600 kWh" in panel and "V L1 234.5 V" in panel
    assert "timeout 3" in panel and "crc 0" not in panel and "last error: timeout" in panel
    assert "last answered 2026-04-04 13:00" in panel  # 10:00 UTC in Kampala
    assert "1.2.3" in panel and "7 readings pending" in panel
    assert '<span class="badge ok">open</span>' in panel
    assert "2026-04-04 18:20" in panel  # heartbeat time in the site's time (Kampala, UTC+3)


def test_online_means_a_reading_within_two_log_intervals(bus):
    comms = MeterComms(
        meter=bus.single,
        last_reading_ts=dt.datetime(2026, 4, 4, 15, 0, tzinfo=UTC),
        updated_at=dt.datetime(2026, 4, 4, 15, 0, tzinfo=UTC),
    )
    comms.save()
    edge = dt.datetime(2026, 4, 4, 15, 30, tzinfo=UTC)  # 2 × 900 s later
    assert commissioning.is_online(comms, bus.gateway, edge)
    assert not commissioning.is_online(comms, bus.gateway, edge + dt.timedelta(seconds=1))
    rows = commissioning.bus_rows(bus.gateway, now=edge)
    assert [(r.meter.modbus_address, r.online) for r in rows] == [(10, True), (100, False)]


def test_the_gateway_page_loads_the_panel(client_for, org, bus):
    page = page_text(client_for(org.agent).get(url("gateway", bus.gateway.pk)))
    assert f'hx-get="{url("gateway_panel", bus.gateway.pk)}"' in page
    assert bus.single.serial in page  # without JavaScript the meters are still listed


# --- 3. tokens: shown once, rotated with a grace period, revoked ----------------------------------


def test_registering_a_gateway_shows_its_token_once(client, client_for, org):
    manager = client_for(org.site_manager)
    response = manager.post(
        url("gateway_register"),
        {"site": org.block_a.pk, "name": "kla-block-c", "meter_limit": 32},
    )
    assert "no-store" in response["Cache-Control"]
    text = page_text(response)
    token = shown_token(text)
    gateway = tokens.gateway_for_token(token)
    assert gateway.name == "kla-block-c" and gateway.site == org.block_a
    assert token not in page_text(manager.get(url("gateway_panel", gateway.pk)))
    assert token[:8] in page_text(manager.get(url("gateway_panel", gateway.pk)))
    assert AuditEvent.objects.filter(object_type="metering.gatewaytoken", note="token issued")
    response = manager.post(
        url("gateway_register"), {"site": org.jinja_town.pk, "name": "jin-1", "meter_limit": 32}
    )
    assert "Select a valid choice" in page_text(response)  # not a site of hers


def test_rotating_asks_first_then_shows_the_new_token_and_keeps_the_old_one_7_days(
    client, client_for, org, bus
):
    manager = client_for(org.site_manager)
    rotate = url("token_rotate", bus.gateway.pk)
    confirm = page_text(manager.get(rotate))
    assert "keeps working for 7 more days" in confirm and 'name="confirm"' in confirm
    assert "Yes, issue a new token" in page_text(manager.post(rotate))  # not confirmed yet
    assert GatewayToken.objects.count() == 1

    response = manager.post(rotate, {"confirm": "yes"})
    assert "no-store" in response["Cache-Control"]
    new = shown_token(page_text(response))
    now = timezone.now()
    assert tokens.gateway_for_token(new) == bus.gateway
    assert tokens.gateway_for_token(bus.token, now=now + dt.timedelta(days=6)) == bus.gateway
    assert tokens.gateway_for_token(bus.token, now=now + dt.timedelta(days=8)) is None
    audit = AuditEvent.objects.get(object_type="metering.gateway", note="token rotated")
    assert audit.actor == org.site_manager and audit.after["new_token"] == new[:8]
    assert list(audit.after["tokens_expire"].values())[0] is not None


def test_revoking_asks_first_and_ends_every_token_at_once(client, client_for, org, bus):
    manager = client_for(org.site_manager)
    revoke = url("token_revoke", bus.gateway.pk)
    assert "Yes, revoke every token" in page_text(manager.get(revoke))
    assert tokens.gateway_for_token(bus.token) == bus.gateway
    response = manager.post(revoke, {"confirm": "yes"}, follow=True)
    assert "Revoked 1 token(s) of kla-block-a" in page_text(response)
    assert edge_post(client, bus, "heartbeat", HEARTBEAT).status_code == 401
    audit = AuditEvent.objects.get(note="tokens revoked")
    assert audit.actor == org.site_manager and audit.after == {"tokens_revoked": 1}


# --- 4. flagged readings --------------------------------------------------------------------------


@pytest.fixture
def jump(client, bus, django_capture_on_commit_callbacks):
    """Readings of the single-phase meter whose last one jumps beyond its load limit."""
    readings = [
        reading(ts="2026-04-04T15:00:00Z", energy=100.0),
        reading(ts="2026-04-04T15:15:00Z", energy=100.5),
        reading(ts="2026-04-04T15:30:00Z", energy=400.0),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        edge_post(client, bus, "readings", batch(*readings))
    flagged = Reading.objects.get(quality=Reading.Quality.FLAGGED)
    assert "exceeds the load limit" in flagged.flags
    return flagged


def hour_15(bus) -> Decimal:
    return HourlyUsage.objects.get(
        meter=bus.single, hour=dt.datetime(2026, 4, 4, 15, tzinfo=UTC)
    ).kwh


def review(client, flagged, **data):
    epoch = int(flagged.ts.timestamp())
    return client.post(url("reading_review", flagged.meter_id, epoch), data, follow=True)


def test_flagged_readings_are_listed_with_their_reasons(client_for, org, bus, jump):
    page = page_text(client_for(org.agent).get(url("flagged", org.block_a.pk)))
    assert bus.single.serial in page and "exceeds the load limit" in page
    assert "2026-04-04 18:30" in page  # the site's time
    assert "Review this reading" not in page  # an agent may look, not act
    by_gateway = url("flagged", org.block_a.pk) + f"?gateway={bus.gateway.pk}"
    page = page_text(client_for(org.site_manager).get(by_gateway))
    assert "exceeds the load limit" in page and "Review this reading" in page


def test_accepting_a_flagged_reading_brings_it_into_consumption(client_for, org, bus, jump):
    assert hour_15(bus) == Decimal("0.500")
    response = review(client_for(org.site_manager), jump, action="accept")
    assert "accept as read" in page_text(response)
    jump_now = Reading.objects.get(meter=bus.single, ts=jump.ts)
    assert jump_now.quality == Reading.Quality.ACCEPTED and jump_now.billable
    assert hour_15(bus) == Decimal("300.000")
    audit = AuditEvent.objects.get(note__startswith="flagged reading of 2026-04-04 15:30 UTC")
    assert (audit.object_type, audit.object_id) == ("metering.meter", str(bus.single.pk))
    assert (audit.before["quality"], audit.after["quality"], audit.actor) == (
        "flagged",
        "accepted",
        org.site_manager,
    )
    assert audit.after["ts"] == "2026-04-04T15:30:00+00:00"
    again = review(client_for(org.site_manager), jump, action="accept")
    assert "it was reviewed already" in page_text(again)


def test_a_register_reset_starts_a_new_baseline(client_for, org, bus, jump):
    review(client_for(org.site_manager), jump, action="reset")
    assert Reading.objects.get(meter=bus.single, ts=jump.ts).quality == Reading.Quality.RESET
    assert hour_15(bus) == Decimal("0.500")  # no usage across the reset


def test_correcting_a_value_needs_a_note_and_is_audited(client_for, org, bus, jump):
    manager = client_for(org.site_manager)
    response = review(manager, jump, action="correct", energy_kwh="100.8")
    assert "a note is required" in page_text(response)
    review(manager, jump, action="correct", energy_kwh="100.8", note="misread digit, photo 41")
    corrected = Reading.objects.get(meter=bus.single, ts=jump.ts)
    assert (corrected.energy_kwh, corrected.quality) == (Decimal("100.800"), "accepted")
    assert hour_15(bus) == Decimal("0.800")
    audit = AuditEvent.objects.get(note="misread digit, photo 41")
    assert (audit.before["energy_kwh"], audit.after["energy_kwh"]) == ("400.000", "100.800")
    assert audit.actor == org.site_manager


# --- 5. who may do what ---------------------------------------------------------------------------


def test_field_agents_may_look_but_not_act(client_for, org, bus, jump):
    agent = client_for(org.agent)
    found_at = Discovery.objects.create(
        gateway=bus.gateway, scanned_at=bus.gateway.created_at, address=12
    )
    panel = agent.get(url("gateway_panel", bus.gateway.pk))
    assert panel.status_code == 200
    text = page_text(panel)
    assert "Scan the bus" not in text and "Rotate the token" not in text and "Accept" not in text
    pk = bus.gateway.pk
    epoch = int(jump.ts.timestamp())
    for path, data in [
        (url("command_new", pk), {"type": "scan", "start": 2, "end": 247}),
        (url("bus_install", pk), {"meter": bus.single.pk}),
        (url("discovery_accept", pk, found_at.pk), {}),
        (url("discovery_dismiss", pk, found_at.pk), {}),
        (url("token_rotate", pk), {"confirm": "yes"}),
        (url("token_revoke", pk), {"confirm": "yes"}),
        (url("reading_review", bus.single.pk, epoch), {"action": "accept"}),
        (url("gateway_register"), {"site": org.block_a.pk, "name": "x", "meter_limit": 32}),
    ]:
        assert agent.post(path, data).status_code == 403, path
    assert agent.get(url("token_rotate", pk)).status_code == 403
    assert not EdgeCommand.objects.exists()
    assert GatewayToken.objects.filter(revoked_at__isnull=True).count() == 1
    assert Reading.objects.filter(quality=Reading.Quality.FLAGGED).count() == 1
    supervisor = client_for(org.supervisor)
    assert (
        supervisor.post(url("command_new", pk), {"type": "read", "address": 10}).status_code == 403
    )


def test_other_sites_gateways_are_not_found(client_for, org, bus, jump):
    pk = bus.gateway.pk
    epoch = int(jump.ts.timestamp())
    outsider = client_for(org.outsider_agent)
    review_url = url("reading_review", bus.single.pk, epoch)
    assert outsider.post(review_url, {"action": "accept"}).status_code == 404
    for path in (url("gateway_panel", pk), url("gateway_commands", pk), url("token_rotate", pk)):
        assert outsider.get(path).status_code == 404, path
    assert outsider.get(url("flagged", org.block_a.pk)).status_code == 404
    assert outsider.post(url("command_new", pk), {"type": "scan"}).status_code == 404
    with acting_as(label="test setup"):
        other = services.gateway_create(site=org.block_b, name="klb-bus")
    manager = client_for(org.site_manager)  # Block A only
    assert manager.get(url("gateway_panel", other.pk)).status_code == 404
    assert manager.post(url("token_revoke", other.pk), {"confirm": "yes"}).status_code == 404
    assert client_for(org.customer).get(url("gateway_panel", pk)).status_code == 404


def test_accepting_the_first_readings_of_an_installed_meter_commissions_it(
    client, client_for, org, bus, django_capture_on_commit_callbacks
):
    # Its only reading is flagged (impossible voltage): the meter stays Installed…
    with django_capture_on_commit_callbacks(execute=True):
        edge_post(client, bus, "readings", batch(reading(address=100, voltage_v=[2309.0])))
    bus.three.refresh_from_db()
    assert bus.three.status == Status.INSTALLED
    flagged = Reading.objects.get(meter=bus.three)
    # …until a person accepts it.
    review(client_for(org.site_manager), flagged, action="accept")
    bus.three.refresh_from_db()
    assert bus.three.status == Status.COMMISSIONED
    assert "accepted by a person" in bus.three.events.last().note
