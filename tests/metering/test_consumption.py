"""The consumption API and its selectors: meter, customer and site, by interval to month.

The data: two meters on Block A (Africa/Kampala, UTC+3) read every 15 minutes from
21:00Z on 2 April (local midnight of 3 April) to 15:00Z on 4 April — 42 hours.
The single-phase meter uses 0.1 kWh an interval (0.4 kWh an hour), the three-phase
one 0.25 (1 kWh an hour) but misses its 06:15–06:45Z readings on 3 April (a gap,
estimated). The single-phase meter served "mine" (the signed-in customer's account)
until 10:37Z on 3 April, then "theirs".
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from mcoms.core.audit import acting_as
from metering import consumption, ingest, rollups, services
from tests import factories
from tests.metering.edge_fixtures import NOW, reading

pytestmark = pytest.mark.django_db
FIRST = dt.datetime(2026, 4, 2, 21, 0, tzinfo=dt.UTC)
LAST = dt.datetime(2026, 4, 4, 15, 0, tzinfo=dt.UTC)
MOVED = dt.datetime(2026, 4, 3, 10, 37, tzinfo=dt.UTC)
GAP = {dt.datetime(2026, 4, 3, 6, m, tzinfo=dt.UTC) for m in (15, 30, 45)}


@pytest.fixture
def grid(org, bus):
    """Readings stored through the ingest path, rollups refreshed, customers assigned."""
    points, ts = [], FIRST
    n = 0
    while ts <= LAST:
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%SZ")
        points.append(reading(address=10, ts=stamp, energy=1000 + 0.1 * n))
        if ts not in GAP:
            points.append(reading(address=100, ts=stamp, energy=5000 + 0.25 * n))
        ts += dt.timedelta(minutes=15)
        n += 1
    outcome = ingest.ingest(gateway=bus.gateway, readings=points, now=NOW)
    assert outcome.flagged == [] and outcome.rejected == []
    rollups.refresh(meter_ids=sorted(outcome.meters), start=outcome.start, end=outcome.end)
    mine = factories.customer(org.block_a, first_name="Mine")
    theirs = factories.customer(org.block_a, first_name="Theirs")
    Customer.objects.filter(pk=mine.pk).update(user=org.customer)
    with acting_as(label="test setup"):
        services.meter_serve_customer(
            meter=bus.single, customer=mine, now=dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)
        )
        services.meter_serve_customer(meter=bus.single, customer=theirs, now=MOVED)
    return bus, mine, theirs


def get(client, url, **params):
    return client.get(url, params)


def kwh(answer) -> list[tuple[str, str, str]]:
    return [(b["period"], b["kwh"], b["estimated_kwh"]) for b in answer["buckets"]]


# --- meter ----------------------------------------------------------------------------------


def test_meter_by_hour(client_for, org, grid):
    bus, _, _ = grid
    client = client_for(org.site_manager)
    url = f"/api/v1/meters/{bus.three.pk}/consumption/"
    response = get(
        client, url, by="hour", **{"from": "2026-04-03T05:00:00Z", "to": "2026-04-03T08:00:00Z"}
    )
    assert response.status_code == 200
    answer = response.json()
    assert kwh(answer) == [
        ("2026-04-03T08:00:00+03:00", "1.000", "0.000"),
        ("2026-04-03T09:00:00+03:00", "1.000", "1.000"),
        ("2026-04-03T10:00:00+03:00", "1.000", "0.000"),
    ]
    assert answer["totals"] == {"kwh": "3.000", "estimated_kwh": "1.000"}
    assert (answer["subject"], answer["id"], answer["by"], answer["unit"]) == (
        "meter",
        bus.three.pk,
        "hour",
        "kWh",
    )
    assert answer["timezone"] == "Africa/Kampala"
    assert (answer["from"], answer["to"]) == (
        "2026-04-03T08:00:00+03:00",
        "2026-04-03T11:00:00+03:00",
    )
    first = answer["buckets"][0]
    assert (first["start"], first["end"]) == (
        "2026-04-03T08:00:00+03:00",
        "2026-04-03T09:00:00+03:00",
    )


def test_meter_by_day_uses_the_sites_local_days(client_for, org, grid):
    bus, _, _ = grid
    client = client_for(org.site_manager)
    url = f"/api/v1/meters/{bus.single.pk}/consumption/"
    answer = get(client, url, by="day", **{"from": "2026-04-01", "to": "2026-04-05"}).json()
    # Local 3 April is a whole day of data (96 intervals); 4 April runs to 18:00 local.
    assert kwh(answer) == [("2026-04-03", "9.600", "0.000"), ("2026-04-04", "7.200", "0.000")]
    assert answer["buckets"][0]["start"] == "2026-04-03T00:00:00+03:00"
    assert answer["totals"]["kwh"] == "16.800"


def test_meter_by_month(client_for, org, grid):
    bus, _, _ = grid
    client = client_for(org.site_manager)
    url = f"/api/v1/meters/{bus.three.pk}/consumption/"
    answer = get(client, url, by="month", **{"from": "2026-01-01", "to": "2026-12-31"}).json()
    assert kwh(answer) == [("2026-04", "42.000", "1.000")]
    assert (answer["from"], answer["to"]) == (
        "2026-01-01T00:00:00+03:00",
        "2027-01-01T00:00:00+03:00",
    )


def test_meter_by_interval_gives_the_deltas_and_marks_the_gap(client_for, org, grid):
    bus, _, _ = grid
    client = client_for(org.site_manager)
    url = f"/api/v1/meters/{bus.three.pk}/consumption/"
    params = {"from": "2026-04-03T06:00:00Z", "to": "2026-04-03T07:30:00Z", "by": "interval"}
    answer = client.get(url, params).json()
    assert [(b["start"], b["end"], b["kwh"], b["estimated_kwh"]) for b in answer["buckets"]] == [
        ("2026-04-03T08:45:00+03:00", "2026-04-03T09:00:00+03:00", "0.250", "0.000"),
        ("2026-04-03T09:00:00+03:00", "2026-04-03T10:00:00+03:00", "1.000", "1.000"),
        ("2026-04-03T10:00:00+03:00", "2026-04-03T10:15:00+03:00", "0.250", "0.000"),
    ]
    assert answer["totals"] == {"kwh": "1.500", "estimated_kwh": "1.000"}


def test_only_the_interval_answer_reads_raw_readings(grid):
    bus, _, _ = grid
    start, end = dt.datetime(2026, 4, 1, tzinfo=dt.UTC), dt.datetime(2026, 4, 6, tzinfo=dt.UTC)
    for by in ("hour", "day", "month"):
        with CaptureQueriesContext(connection) as queries:
            consumption.meter_usage(bus.single, by=by, start=start, end=end)
            consumption.site_usage(bus.gateway.site, by=by, start=start, end=end)
            consumption.customer_usage(grid[1], by=by, start=start, end=end)
        assert not [q for q in queries if "metering_reading" in q["sql"]], by
    with CaptureQueriesContext(connection) as queries:
        consumption.meter_usage(bus.single, by="interval", start=start, end=end)
    assert any("metering_reading" in q["sql"] for q in queries)


# --- customer ---------------------------------------------------------------------------------


def test_a_customers_usage_is_their_meters_usage_while_assigned(client_for, org, grid):
    _, mine, theirs = grid
    client = client_for(org.billing)
    params = {"from": "2026-04-01", "to": "2026-04-30"}
    # 21:00Z to 10:00Z inclusive: the hour a meter changes hands goes to whom it served at
    # its start.
    answer = get(client, f"/api/v1/customers/{mine.pk}/consumption/", by="day", **params).json()
    assert kwh(answer) == [("2026-04-03", "5.600", "0.000")]
    answer = get(client, f"/api/v1/customers/{theirs.pk}/consumption/", by="day", **params)
    assert kwh(answer.json()) == [
        ("2026-04-03", "4.000", "0.000"),
        ("2026-04-04", "7.200", "0.000"),
    ]
    hourly = get(
        client,
        f"/api/v1/customers/{mine.pk}/consumption/",
        by="hour",
        **{"from": "2026-04-02T20:00:00Z", "to": "2026-04-03T12:00:00Z"},
    ).json()
    assert len(hourly["buckets"]) == 14 and hourly["totals"]["kwh"] == "5.600"
    assert hourly["buckets"][-1]["start"] == "2026-04-03T13:00:00+03:00"  # 10:00Z
    monthly = get(client, f"/api/v1/customers/{theirs.pk}/consumption/", by="month", **params)
    assert kwh(monthly.json()) == [("2026-04", "11.200", "0.000")]


def test_days_add_up_to_hours_for_a_customer_whose_meter_moved_mid_day(grid):
    _, mine, theirs = grid
    start, end = dt.datetime(2026, 4, 2, tzinfo=dt.UTC), dt.datetime(2026, 4, 5, tzinfo=dt.UTC)
    for customer in (mine, theirs):
        totals = {
            by: consumption.customer_usage(customer, by=by, start=start, end=end).kwh
            for by in ("hour", "day", "month")
        }
        assert len(set(totals.values())) == 1, totals
    total = sum(
        consumption.customer_usage(c, by="day", start=start, end=end).kwh for c in (mine, theirs)
    )
    assert total == Decimal("16.800")


def test_a_customer_without_meters_has_no_usage(client_for, org, grid):
    nobody = factories.customer(org.block_a, first_name="Nobody")
    client = client_for(org.site_manager)
    answer = get(client, f"/api/v1/customers/{nobody.pk}/consumption/", **{"from": "2026-04-01"})
    assert answer.status_code == 200
    assert answer.json()["buckets"] == [] and answer.json()["totals"]["kwh"] == "0.000"


# --- site ---------------------------------------------------------------------------------------


def test_site_by_day_hour_and_month(client_for, org, grid):
    client = client_for(org.cluster)
    url = f"/api/v1/sites/{org.block_a.pk}/consumption/"
    answer = get(client, url, by="day", **{"from": "2026-04-03", "to": "2026-04-03"}).json()
    assert kwh(answer) == [("2026-04-03", "33.600", "1.000")]
    answer = get(
        client, url, by="hour", **{"from": "2026-04-03T06:00:00Z", "to": "2026-04-03T07:00:00Z"}
    ).json()
    assert kwh(answer) == [("2026-04-03T09:00:00+03:00", "1.400", "1.000")]
    answer = get(client, url, by="month", **{"from": "2026-04-01", "to": "2026-05-31"}).json()
    assert kwh(answer) == [("2026-04", "58.800", "1.000")]


# --- scoping --------------------------------------------------------------------------------------


def urls(org, grid) -> dict[str, str]:
    bus, mine, theirs = grid
    return {
        "my meter": f"/api/v1/meters/{bus.single.pk}/consumption/",
        "other meter": f"/api/v1/meters/{bus.three.pk}/consumption/",
        "my account": f"/api/v1/customers/{mine.pk}/consumption/",
        "their account": f"/api/v1/customers/{theirs.pk}/consumption/",
        "site": f"/api/v1/sites/{org.block_a.pk}/consumption/",
    }


@pytest.mark.parametrize(
    ("person", "allowed"),
    [
        ("customer", {"my meter", "my account"}),
        ("site_manager", {"my meter", "other meter", "my account", "their account", "site"}),
        ("agent", {"my meter", "other meter", "my account", "their account", "site"}),
        ("admin", {"my meter", "other meter", "my account", "their account", "site"}),
        ("outsider_agent", set()),
    ],
)
def test_scoping(client_for, org, grid, person, allowed):
    client = client_for(getattr(org, person))
    for name, url in urls(org, grid).items():
        status = client.get(url, {"from": "2026-04-03", "to": "2026-04-03"}).status_code
        assert status == (200 if name in allowed else 404), (person, name, status)


def test_a_customer_sees_their_meter_only_while_it_served_them(client_for, org, grid):
    bus, _, _ = grid
    client = client_for(org.customer)
    url = f"/api/v1/meters/{bus.single.pk}/consumption/"
    answer = get(client, url, by="day", **{"from": "2026-04-01", "to": "2026-04-30"}).json()
    assert kwh(answer) == [("2026-04-03", "5.600", "0.000")]
    intervals = get(
        client, url, by="interval", **{"from": "2026-04-03T09:00:00Z", "to": "2026-04-03T12:00:00Z"}
    ).json()
    # Intervals starting 09:00Z..10:45Z (the hour of the move is still theirs).
    assert len(intervals["buckets"]) == 8
    assert intervals["buckets"][-1]["start"] == "2026-04-03T13:45:00+03:00"


def test_signed_out_callers_get_nothing(client, org, grid):
    response = client.get(f"/api/v1/sites/{org.block_a.pk}/consumption/", {"from": "2026-04-03"})
    assert response.status_code in (401, 403)


# --- asking badly --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "params", "message"),
    [
        ("meter", {"by": "hour", "from": "2026-04-01", "to": "2026-05-02"}, "At most 31 days"),
        ("meter", {"by": "day", "from": "2025-01-01", "to": "2026-01-02"}, "At most 366 days"),
        ("meter", {"by": "interval", "from": "2026-04-01", "to": "2026-04-08"}, "At most 7 days"),
        ("site", {"by": "interval", "from": "2026-04-01"}, "single meter"),
        ("customer", {"by": "interval", "from": "2026-04-01"}, "single meter"),
        ("meter", {"by": "week", "from": "2026-04-01"}, "by must be one of"),
        ("meter", {"by": "day"}, "from is required"),
        ("meter", {"from": "yesterday"}, "neither a date"),
        ("meter", {"from": "2026-04-05", "to": "2026-04-01"}, "to must be after from"),
    ],
)
def test_bad_ranges_are_400_with_the_reason(client_for, org, grid, subject, params, message):
    bus, mine, _ = grid
    pk = {"meter": bus.single.pk, "customer": mine.pk, "site": org.block_a.pk}[subject]
    response = client_for(org.admin).get(f"/api/v1/{subject}s/{pk}/consumption/", params)
    assert response.status_code == 400
    assert message in str(response.json())


def test_a_full_leap_year_by_day_is_allowed(client_for, org, grid):
    bus, _, _ = grid
    response = client_for(org.admin).get(
        f"/api/v1/meters/{bus.single.pk}/consumption/",
        {"by": "day", "from": "2028-01-01", "to": "2028-12-31"},
    )
    assert response.status_code == 200 and response.json()["buckets"] == []


def test_schema_documents_the_consumption_api(client, org):
    client.force_login(org.admin)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    for subject in ("meters", "customers", "sites"):
        operation = schema["paths"][f"/api/v1/{subject}/{{id}}/consumption/"]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert names == {"id", "from", "to", "by"}
        # 429: every operation may be throttled (mcoms.security.throttles).
        assert set(operation["responses"]) == {"200", "400", "404", "429"}
    answer = schema["components"]["schemas"]["Consumption"]["properties"]
    assert {"from", "to", "buckets", "totals", "timezone"} <= set(answer)
