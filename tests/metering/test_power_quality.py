"""Power quality from the readings (metering.power_quality): the pure judgement and the
hourly check with per-site limits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metering import power_quality as pq
from metering.models import Alert, Reading, SiteWatchSettings

UTC = dt.UTC
LIMITS = pq.PowerLimits()
# The check at 17:05 judges 16:00-17:00 UTC.
NOW = dt.datetime(2026, 4, 4, 17, 5, tzinfo=UTC)
HOUR_START = dt.datetime(2026, 4, 4, 16, 0, tzinfo=UTC)


def one(v=230.0, *, pf=0.97, kw=0.4, hz=50.0, i=(2.0,)):
    return pq.Sample((v,), tuple(i), kw, pf, hz)


def kinds(found):
    return [f.kind for f in found]


def test_a_healthy_hour_is_fine():
    assert pq.assess([one(), one(228), one(233)], LIMITS) == []


def test_defaults_are_230_v_10_percent_50_hz_1_percent_pf_085_imbalance_10():
    assert (LIMITS.voltage_low, LIMITS.voltage_high) == (207.0, 253.0)
    assert (LIMITS.frequency_low, LIMITS.frequency_high) == (49.5, 50.5)
    assert LIMITS.min_power_factor == 0.85 and LIMITS.max_imbalance_pct == 10.0
    defaults = pq.PowerLimits.of(SiteWatchSettings.defaults())
    assert defaults == LIMITS


def test_a_weak_evening_supply_alerts_on_the_median_not_on_one_reading():
    found = pq.assess([one(190), one(195), one(201), one(230)], LIMITS)
    assert kinds(found) == [pq.VOLTAGE]
    assert found[0].value == pytest.approx(198.0)
    assert "below limits on L1: median 198.0 V" in found[0].explanation
    assert "limits 207.0-253.0 V" in found[0].explanation
    assert pq.assess([one(190), one(230), one(231)], LIMITS) == []  # one dip only


def test_high_voltage_on_one_phase_of_a_three_phase_meter():
    s = pq.Sample((231.0, 262.0, 229.0), (3.0, 3.1, 2.9), 2.0, 0.95, 50.0)
    found = pq.assess([s, s], LIMITS, phases=3)
    assert kinds(found) == [pq.VOLTAGE]
    assert "above limits on L2" in found[0].explanation


def test_frequency_and_power_factor():
    assert kinds(pq.assess([one(hz=49.2), one(hz=49.3)], LIMITS)) == [pq.FREQUENCY]
    assert kinds(pq.assess([one(pf=0.7), one(pf=0.72)], LIMITS)) == [pq.POWER_FACTOR]
    # Without load a power factor says nothing.
    idle = [one(pf=0.3, kw=0.0, i=(0.05,)), one(pf=0.2, kw=0.01, i=(0.1,))]
    assert pq.assess(idle, LIMITS) == []


def test_phase_imbalance_on_three_phase_meters_only():
    s = pq.Sample((230.0, 231.0, 229.0), (10.0, 4.0, 4.0), 3.0, 0.95, 50.0)
    found = pq.assess([s, s], LIMITS, phases=3)
    assert kinds(found) == [pq.PHASE_IMBALANCE]
    assert found[0].value == pytest.approx(66.67, abs=0.01)  # (10 - 6) / 6
    assert "currents differ from their average by 66.7 %" in found[0].explanation
    # Small currents are not judged; neither are single-phase meters.
    low = pq.Sample((230.0, 231.0, 229.0), (0.9, 0.1, 0.2), 0.1, 0.95, 50.0)
    assert pq.assess([low, low], LIMITS, phases=3) == []
    assert pq.imbalance_pct([230.0, 230.0, 230.0]) == 0.0


def test_no_voltage_is_supply_lost_and_nothing_else():
    found = pq.assess([one(0.0, hz=0.0, pf=0.0), one(3.0, hz=0.0, pf=0.0)], LIMITS)
    assert kinds(found) == [pq.SUPPLY_LOST]
    assert "No voltage" in found[0].explanation


def test_site_limits_change_the_verdict():
    row = SiteWatchSettings.defaults()
    row.nominal_voltage, row.voltage_tolerance_pct = 240.0, 6.0
    limits = pq.PowerLimits.of(row)
    assert (limits.voltage_low, limits.voltage_high) == (225.6, 254.4)
    assert kinds(pq.assess([one(222), one(224)], limits)) == [pq.VOLTAGE]
    assert pq.assess([one(222), one(224)], LIMITS) == []


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=207.5, max_value=252.5),
            st.floats(min_value=49.55, max_value=50.45),
            st.floats(min_value=0.86, max_value=1.0),
            st.floats(min_value=0, max_value=30),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_readings_within_every_limit_never_alert(rows):
    samples = [pq.Sample((v,), (i,), i * v / 1000, pf, hz) for v, hz, pf, i in rows]
    assert pq.assess(samples, LIMITS) == []


# --- the hourly check --------------------------------------------------------------------------


def store(meter, volts, *, start=HOUR_START, **values):
    Reading.objects.bulk_create(
        [
            Reading(
                meter=meter,
                ts=start + dt.timedelta(minutes=15 * (n + 1)),
                energy_kwh=Decimal(100 + n),
                voltage_l1=v,
                current_l1=values.get("current", 2.0),
                power_kw=values.get("kw", 0.4),
                power_factor=values.get("pf", 0.97),
                frequency_hz=values.get("hz", 50.0),
                received_at=start + dt.timedelta(hours=1),
            )
            for n, v in enumerate(volts)
        ]
    )


def test_the_check_opens_and_later_resolves_a_voltage_alert(bus):
    store(bus.single, [192.0, 195.0, 198.0, 199.0])
    store(bus.three, [231.0, 230.0, 232.0, 229.0])

    result = pq.check(now=NOW, notify=False)

    assert result.meters == 2 and result.with_readings == 2
    alert = Alert.objects.get()
    assert (alert.kind, alert.meter) == (Alert.Kind.VOLTAGE, bus.single)
    assert alert.details["value"] == pytest.approx(196.5)
    assert alert.details["low"] == 207.0 and alert.details["high"] == 253.0
    assert alert.details["hour"] == HOUR_START.isoformat()
    assert alert.details["chart"].endswith("?hour=2026-04-04T16:00Z")
    assert alert.message.startswith(f"Meter {bus.single.serial}: Voltage below limits on L1")

    # The same the next hour: still one alert, seen again.
    store(bus.single, [193.0] * 4, start=HOUR_START + dt.timedelta(hours=1))
    pq.check(now=NOW + dt.timedelta(hours=1), notify=False)
    assert Alert.objects.count() == 1

    # A whole good hour resolves it.
    store(bus.single, [229.0] * 4, start=HOUR_START + dt.timedelta(hours=2))
    later = pq.check(now=NOW + dt.timedelta(hours=2), notify=False)
    alert.refresh_from_db()
    assert later.resolved == 1 and alert.status == Alert.Status.RESOLVED
    assert alert.note == "within limits again over a whole hour"


def test_the_check_uses_the_sites_limits(bus):
    store(bus.single, [222.0, 223.0, 224.0, 222.0])
    pq.check(now=NOW, notify=False)
    assert not Alert.objects.exists()
    SiteWatchSettings.objects.create(
        site=bus.gateway.site, nominal_voltage=240.0, voltage_tolerance_pct=6.0
    )
    pq.check(now=NOW, notify=False)
    assert Alert.objects.get().kind == Alert.Kind.VOLTAGE


def test_flagged_readings_take_no_part(bus):
    store(bus.single, [150.0] * 4)
    Reading.objects.filter(meter=bus.single).update(quality=Reading.Quality.FLAGGED)
    result = pq.check(now=NOW, notify=False)
    assert result.with_readings == 0 and not Alert.objects.exists()
