"""The plant part of the demo: equipment, OpenEMS telemetry, a plant log, balances."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from metering.plant.models import EnergyBalance, PlantAsset, PlantLog, TelemetrySample

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_the_demo_has_plant_equipment_telemetry_a_log_and_balances(capsys):
    call_command("seed_demo")
    capsys.readouterr()
    assert PlantAsset.objects.filter(site__code="kla-b", kind="pv_array").exists()
    assert TelemetrySample.objects.filter(site__code="kla-b", channel="_sum/EssSoc").exists()
    assert PlantLog.objects.filter(site__code="kla-b").count() == 1
    days = EnergyBalance.objects.filter(site__code="kla-b", period="day", method="plant")
    assert days.exists()
    # The demo's loads take ~11 % more than the meters record: losses are positive, not wild.
    full = [b for b in days if b.losses_pct is not None and b.consumed_kwh > 5]
    assert full and all(-5 < b.losses_pct < 40 for b in full)
