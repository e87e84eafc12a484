"""Opt-out and quiet hours hold back non-essential messages; essential ones always go."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from notifications import catalog, preferences, services
from notifications.models import Message, MessageTemplate, QuietHours

pytestmark = pytest.mark.django_db

PHONE = "+256772123456"
# 22:30 in Kampala (UTC+3) on 14 November 2026
NIGHT = dt.datetime(2026, 11, 14, 19, 30, tzinfo=dt.UTC)
# 10:00 in Kampala
DAY = dt.datetime(2026, 11, 14, 7, 0, tzinfo=dt.UTC)


@pytest.fixture
def templates(db):
    catalog.install_defaults()


def _send(key, *, now=DAY, to=PHONE, site_id=1, **kwargs):
    return services.send_message(
        to=to,
        template=key,
        context=catalog.BY_KEY[key].sample,
        site_id=site_id,
        now=now,
        **kwargs,
    )


def test_opt_out_blocks_non_essential_but_not_essential(
    templates, django_capture_on_commit_callbacks
):
    preferences.opt_out("+256 772 123 456", reason="asked by SMS")
    assert preferences.opted_out(PHONE)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reminder = _send("due_date_reminder")
        receipt = _send("payment_received")
        notice = _send("disconnection_warning")
    assert reminder.status == Message.Status.SKIPPED and reminder.error == "recipient opted out"
    assert receipt.status == notice.status == Message.Status.QUEUED
    assert len(callbacks) == 2  # only the essential two are handed to the worker
    assert preferences.opt_in(PHONE) is True
    assert _send("due_date_reminder").status == Message.Status.QUEUED


def test_opt_out_is_per_address():
    preferences.opt_out("Amina@Example.org")
    assert preferences.opted_out("amina@example.org")
    assert not preferences.opted_out("+256700000000")


def test_quiet_hours_defer_non_essential_and_let_essential_through(
    templates, django_capture_on_commit_callbacks
):
    QuietHours.objects.create(start=dt.time(21), end=dt.time(7), timezone="Africa/Kampala")
    # A night still to come, so the worker (which reads the real clock) must wait for it.
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    night = soon.replace(hour=19, minute=30, second=0, microsecond=0)  # 22:30 in Kampala
    day = night - dt.timedelta(hours=12, minutes=30)  # 10:00 in Kampala
    with django_capture_on_commit_callbacks(execute=True):
        outage = _send("site_outage", now=night)
        receipt = _send("payment_received", now=night)
        daytime = _send("site_outage", now=day)
    morning = (night + dt.timedelta(days=1)).replace(hour=4, minute=0)  # 07:00 Kampala
    outage.refresh_from_db()
    receipt.refresh_from_db()
    daytime.refresh_from_db()
    # The receipt and the daytime message went at once; the night-time outage waits.
    assert receipt.status == daytime.status == Message.Status.SENT
    assert receipt.not_before is None and daytime.not_before is None
    assert outage.status == Message.Status.QUEUED and outage.not_before == morning
    # Before morning nothing is released; at 07:00 the held message goes.
    assert services.release_due(now=morning - dt.timedelta(minutes=1)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert services.release_due(now=morning) == 1
    outage.refresh_from_db()
    assert outage.status == Message.Status.SENT


def test_site_quiet_hours_override_the_global_ones_and_timezone_can_be_passed(templates):
    QuietHours.objects.create(start=dt.time(21), end=dt.time(7))
    QuietHours.objects.create(site_id=2, start=dt.time(23), end=dt.time(6))
    assert _send("low_balance", now=NIGHT, site_id=2).not_before is None  # 22:30 < 23:00
    assert _send("low_balance", now=NIGHT, site_id=1).not_before is not None
    # 19:30 in UTC is outside 21:00-07:00
    assert _send("low_balance", now=NIGHT, site_id=1, timezone="UTC").not_before is None


def test_no_quiet_hours_configured_sends_at_once(templates):
    assert _send("abnormal_usage", now=NIGHT).not_before is None


def test_window_end_handles_same_day_and_overnight_windows():
    zone = dt.timezone(dt.timedelta(hours=3))
    at = dt.datetime(2026, 11, 14, 13, 0, tzinfo=zone)
    assert preferences.window_end(at, dt.time(12), dt.time(14)) == at.replace(hour=14)
    assert preferences.window_end(at, dt.time(14), dt.time(16)) is None
    early = dt.datetime(2026, 11, 15, 2, 0, tzinfo=zone)
    assert preferences.window_end(early, dt.time(21), dt.time(7)) == early.replace(hour=7)
    assert preferences.window_end(at, dt.time(9), dt.time(9)) is None


def test_uncatalogued_events_use_the_templates_essential_flag(db):
    MessageTemplate.objects.create(key="custom_notice", body="Hi", essential=True)
    MessageTemplate.objects.create(key="custom_promo", body="Offer")
    preferences.opt_out(PHONE)
    sent = services.send_message(to=PHONE, template="custom_notice", context={})
    held = services.send_message(to=PHONE, template="custom_promo", context={})
    assert (sent.status, held.status) == ("queued", "skipped")


def test_quiet_hours_refuse_an_unknown_timezone():
    row = QuietHours(start=dt.time(21), end=dt.time(7), timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        row.full_clean()
