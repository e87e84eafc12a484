"""The operations page on a 360 px phone in headless Chromium (the shared page checks)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from metering import schedules
from tests.browser.conftest import chromium, screen, site_data  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def late_beat(site_data):  # noqa: F811
    """Beat's schedules, one of them two hours late (made before the browser starts)."""
    schedules.sync()
    PeriodicTask.objects.update(last_run_at=timezone.now())
    PeriodicTask.objects.filter(name="metering.check_missing_reads").update(
        last_run_at=timezone.now() - dt.timedelta(hours=2)
    )


def test_admin_sees_red_and_green_and_changes_a_threshold(late_beat, screen):  # noqa: F811
    tab = screen()
    page = tab.page
    tab.sign_in("admin")
    tab.goto("/ops/")
    assert page.get_by_role("heading", name="Operations").is_visible()
    late = page.locator('tr[data-check="beat_overdue_schedules"]')
    assert "Failing" in late.inner_text()
    assert "metering.check_missing_reads" in late.inner_text()
    assert "OK" in page.locator('tr[data-check="billing_runs_stuck"]').inner_text()
    tab.check("ops-page")

    page.get_by_label("Schedules beat has not run in time").fill("3")
    page.get_by_role("button", name="Save thresholds").click()
    page.wait_for_url("**/ops/")
    assert "Changed: Schedules beat has not run in time." in page.content()
    assert "OK" in page.locator('tr[data-check="beat_overdue_schedules"]').inner_text()
    tab.check("ops-page-threshold-changed")
