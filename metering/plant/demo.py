"""Demo data of the plant (called by ``seed_demo``): equipment at the Kampala sites, OpenEMS
telemetry at Block B shaped on its metered load, a field agent's plant log, and the
energy balances and health checks those give."""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal

from django.core.files.base import ContentFile

from mcoms.core.audit import acting_as
from mcoms.core.models import Site, User
from metering.models import Gateway, SiteHourlyUsage
from metering.plant import alerts, health, services, tasks
from metering.plant.models import PlantAsset, TelemetrySample

STEP = dt.timedelta(minutes=15)
# A tiny valid JPEG stands in for the photo of the inverter's display.
PHOTO = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c"
    "1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b"
    "080001000101011100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffda0008"
    "0101000003f0007fffd9"
)


def _equipment(site: Site, *, kwp: str, battery_kwh: str, now: dt.datetime) -> None:
    for kind, name, source, extra in (
        ("pv_array", "Roof array", "openems", {"kwp": Decimal(kwp)}),
        (
            "inverter",
            "Inverter 1",
            "openems",
            {"make_model": "SRNE HF4850S80-H", "rated_kw": Decimal("5")},
        ),
        (
            "inverter",
            "Inverter 2",
            "openems",
            {"make_model": "SRNE HF4850S80-H", "rated_kw": Decimal("5")},
        ),
        (
            "battery",
            "Battery bank",
            "openems",
            {"capacity_kwh": Decimal(battery_kwh), "chemistry": "LiFePO4"},
        ),
        ("generator", "Standby generator", "manual", {"rated_kw": Decimal("8")}),
    ):
        if not PlantAsset.objects.filter(site=site, kind=kind, name=name).exists():
            services.asset_create(site=site, kind=kind, name=name, source=source, now=now, **extra)


def _telemetry(site: Site, gateway: Gateway, kwp: float, battery_kwh: float, rng, now) -> None:
    """15-minute OpenEMS samples over the site's metered history: the loads take ~11 % more
    than the meters record (lines, theft); the generator covers what PV and battery cannot."""
    hours = dict(SiteHourlyUsage.objects.filter(site=site).values_list("hour", "kwh"))
    if not hours:
        return
    ts, end = min(hours), min(max(hours) + dt.timedelta(hours=1), now)
    produced = charged = discharged = generated = 0.0
    soc = 60.0
    rows = []
    while ts < end:
        local_h = ts.astimezone(site.zone).hour + ts.minute / 60
        sun = max(0.0, math.sin(math.pi * (local_h - 6.5) / 12))
        pv_kw = kwp * 0.8 * sun * rng.uniform(0.7, 1.0)
        load_kw = float(hours.get(ts.replace(minute=0), 0)) * 1.11
        net = (pv_kw - load_kw) * 0.25  # kWh into (+) or out of (−) the battery
        generator_kwh = 0.0
        if net > 0:  # charge what fits; the rest of the PV is curtailed
            stored = min(net, (100 - soc) / 100 * battery_kwh)
            pv_used = load_kw * 0.25 + stored
        else:  # discharge down to 20 %, then the generator
            stored = max(net, -(soc - 20) / 100 * battery_kwh)
            generator_kwh = stored - net
            pv_used = pv_kw * 0.25
        soc += stored / battery_kwh * 100
        charged += max(stored, 0) * 1000
        discharged += max(-stored, 0) * 1000
        produced += pv_used * 1000
        generated += generator_kwh * 1000
        for channel, value in (
            ("_sum/ProductionActivePower", pv_used * 4000),
            ("_sum/ConsumptionActivePower", load_kw * 1000),
            ("_sum/GridActivePower", generator_kwh * 4000),
            ("_sum/EssSoc", round(soc)),
            ("_sum/ProductionActiveEnergy", round(produced)),
            ("_sum/EssActiveChargeEnergy", round(charged)),
            ("_sum/EssActiveDischargeEnergy", round(discharged)),
            ("_sum/GridBuyActiveEnergy", round(generated)),
        ):
            rows.append(
                TelemetrySample(
                    gateway=gateway,
                    site=site,
                    ts=ts,
                    channel=channel,
                    value=float(value),
                    received_at=now,
                )
            )
        ts += STEP
    TelemetrySample.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)


def load(*, now: dt.datetime, rng: random.Random) -> None:
    block_a = Site.objects.filter(code="kla-a").first()
    block_b = Site.objects.filter(code="kla-b").first()
    if block_a is None or block_b is None:
        return
    with acting_as(label="demo data", channel="command"):
        alerts.ensure_templates()
        _equipment(block_a, kwp="12", battery_kwh="30", now=now)
        _equipment(block_b, kwp="15", battery_kwh="40", now=now)
        gateway = Gateway.objects.filter(site=block_b).first()
        if gateway is not None:
            _telemetry(block_b, gateway, 15.0, 40.0, random.Random(rng.random()), now)
        agent = (
            User.objects.filter(role="field_agent", sites=block_b).first()
            or User.objects.filter(role="field_agent").first()
        )
        if agent is not None:
            local_evening = now.astimezone(block_b.zone).replace(hour=18, minute=0)
            read_at = local_evening if local_evening < now else local_evening - dt.timedelta(days=1)
            services.plant_log_record(
                site=block_b,
                by=agent,
                read_at=read_at,
                photo=ContentFile(PHOTO, name="inverter-display.jpg"),
                pv_kwh_today=Decimal("52.4"),
                battery_soc_pct=Decimal("88"),
                generator_hours=Decimal("1204.5"),
                fuel_added_l=Decimal("20"),
                note="Demo: evening reading of the inverter and generator",
                now=now,
            )
        tasks.balance_sites(now=now, days=7)
        health.check(now=now)
