"""The demo shows last month's posted billing run for Kampala Block A."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command

from billing.models import BillingRun, Invoice, TariffVersion

pytestmark = pytest.mark.django_db


def test_demo_posts_last_months_run_with_invoices():
    began = time.perf_counter()
    call_command("seed_demo")
    run = BillingRun.objects.get(site__code="kla-a")
    assert run.status == BillingRun.Status.POSTED
    invoices = Invoice.objects.filter(run=run)
    assert invoices.count() == run.done > 0
    assert run.held >= 1 and run.items.filter(status="held").exclude(reason="").exists()
    assert invoices.filter(estimated=True).exists()
    assert {line.kind for inv in invoices for line in inv.lines.all()} >= {"fixed", "energy", "vat"}
    assert any("peak" in line.description for inv in invoices for line in inv.lines.all())
    assert any("lifeline" in line.description for inv in invoices for line in inv.lines.all())
    for code in ("ugx-flat", "ugx-domestic", "ugx-tou"):
        version = TariffVersion.objects.get(tariff__code=code)
        assert version.status == "approved" and version.proposed_by != version.decided_by
    assert invoices.first().number.startswith(f"KLA-A-{run.period_start:%Y%m}-")
    print(f"seed_demo took {time.perf_counter() - began:.1f} s")
