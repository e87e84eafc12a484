"""Reminders, impending-disconnection notices and disconnect requests by the site policy.

Block A keeps the default policy unless a test says otherwise: reminder 3 days before
the due date, notice 7 days overdue, disconnection 7 days after the notice, 08:00–17:00
on working days. The bill is issued Mon 1 June 2026 and due Mon 15 June. Times are the
site's (Africa/Kampala); the clock is passed in, never read from the wall.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal as D

import pytest

from billing.collections import policy
from billing.collections.models import CollectionNotice
from billing.collections.tasks import run_collections
from billing.models import BillingPolicy, SupplyRequest
from mcoms.core.models import PublicHoliday
from notifications.models import Message
from tests import factories
from tests.billing.collections.conftest import bill, pay

KLA = zoneinfo.ZoneInfo("Africa/Kampala")


def at(day: int, hour: int = 10, month: int = 6) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=KLA)


def run(org, when: dt.datetime):
    (report,) = policy.run(now=when, sites=[org.block_a])
    return report


def sent(customer, template):
    return list(Message.objects.filter(to=customer.phone, template_key=template))


@pytest.fixture
def owing(org, templates):
    customer = factories.customer(org.block_a, first_name="Okello", status="active")
    invoice = bill(customer, "50000", issued=dt.date(2026, 6, 1), due=dt.date(2026, 6, 15))
    return customer, invoice


def disconnects(customer):
    return SupplyRequest.objects.filter(customer=customer, action="disconnect", reason="arrears")


def test_reminder_goes_once_from_reminder_days_before_due(org, owing):
    customer, invoice = owing
    assert run(org, at(11)).reminders == 0  # four days before: too early
    assert sent(customer, "due_date_reminder") == []
    assert run(org, at(12)).reminders == 1
    (message,) = sent(customer, "due_date_reminder")
    assert "UGX 50,000" in message.body and "15 Jun" in message.body
    assert run(org, at(12, 15)).reminders == 0
    assert run(org, at(14)).reminders == 0
    assert len(sent(customer, "due_date_reminder")) == 1
    assert CollectionNotice.objects.get(invoice=invoice, kind="reminder").amount == D("50000")


def test_no_reminder_when_already_paid_or_policy_has_none(org, owing, templates):
    customer, _ = owing
    pay(customer, "50000", on=dt.date(2026, 6, 10))
    run(org, at(12))
    assert sent(customer, "due_date_reminder") == []
    BillingPolicy.objects.create(site=org.block_a, reminder_days=0)
    other = factories.customer(org.block_a, status="active")
    bill(other, "1000", issued=dt.date(2026, 6, 1), due=dt.date(2026, 6, 15))
    run(org, at(14))
    assert sent(other, "due_date_reminder") == []


def test_notice_after_notice_days_names_the_disconnection_day(org, owing):
    customer, invoice = owing
    run(org, at(21))  # six days overdue
    assert sent(customer, "disconnection_warning") == []
    assert run(org, at(22)).notices == 1
    (message,) = sent(customer, "disconnection_warning")
    assert "29 Jun" in message.body and "UGX 50,000" in message.body
    notice = CollectionNotice.objects.get(invoice=invoice, kind="notice")
    assert notice.disconnect_from == dt.date(2026, 6, 29)
    assert run(org, at(23)).notices == 0  # at most once per invoice
    assert len(sent(customer, "disconnection_warning")) == 1


def test_disconnection_day_moves_past_weekend_and_holidays(org, owing):
    customer, _ = owing
    BillingPolicy.objects.create(site=org.block_a, grace_days=5)  # 22 + 5 = Sat 27 June
    PublicHoliday.objects.create(site=org.block_a, date=dt.date(2026, 6, 29), name="Holiday")
    run(org, at(22))
    assert CollectionNotice.objects.get(kind="notice").disconnect_from == dt.date(2026, 6, 30)
    assert "30 Jun" in sent(customer, "disconnection_warning")[0].body


def test_paid_customers_get_no_notice(org, owing):
    customer, _ = owing
    pay(customer, "50000", on=dt.date(2026, 6, 20))
    assert run(org, at(22)).notices == 0
    assert sent(customer, "disconnection_warning") == []


def test_arrears_below_the_minimum_get_no_notice(org, owing):
    customer, _ = owing
    BillingPolicy.objects.create(site=org.block_a, notice_min_amount=D("10000"))
    pay(customer, "45000", on=dt.date(2026, 6, 20))  # 5,000 left overdue
    run(org, at(22))
    assert sent(customer, "disconnection_warning") == []
    big = factories.customer(org.block_a, status="active")
    bill(big, "12000", issued=dt.date(2026, 6, 1), due=dt.date(2026, 6, 15))
    run(org, at(22, 11))
    assert len(sent(big, "disconnection_warning")) == 1


def test_disconnect_requested_after_grace_only_in_working_hours(org, owing):
    customer, _ = owing
    BillingPolicy.objects.create(site=org.block_a, grace_days=4)  # from Fri 26 June
    PublicHoliday.objects.create(site=org.block_a, date=dt.date(2026, 6, 29), name="Holiday")
    run(org, at(22))
    assert CollectionNotice.objects.get(kind="notice").disconnect_from == dt.date(2026, 6, 26)
    run(org, at(25))  # grace not over
    assert not disconnects(customer).exists()
    run(org, at(26, 7))  # before 08:00
    run(org, at(26, 17))  # 17:00 is closing time
    run(org, at(27))  # Saturday
    run(org, at(29))  # public holiday
    assert not disconnects(customer).exists()
    report = run(org, at(30, 9))
    assert report.disconnects == 1
    (req,) = disconnects(customer)
    assert req.status == "requested"
    assert "50,000" in req.detail and "22 Jun" in req.detail
    assert CollectionNotice.objects.get(kind="notice").supply_request == req
    run(org, at(30, 11))
    assert disconnects(customer).count() == 1


def test_weekends_allowed_when_the_policy_says_so(org, owing):
    customer, _ = owing
    BillingPolicy.objects.create(site=org.block_a, grace_days=5, disconnect_weekdays_only=False)
    run(org, at(22))
    run(org, at(27))  # Saturday, allowed
    assert disconnects(customer).count() == 1


def test_paying_off_cancels_the_open_disconnect_request(org, owing):
    customer, _ = owing
    run(org, at(22))
    run(org, at(29))
    (req,) = disconnects(customer)
    pay(customer, "20000", on=dt.date(2026, 6, 29))  # still 30,000 overdue
    assert run(org, at(29, 12)).cancelled == 0
    pay(customer, "30000", on=dt.date(2026, 6, 29))
    assert run(org, at(29, 22)).cancelled == 1  # checked on every run, whatever the hour
    req.refresh_from_db()
    assert req.status == "cancelled" and "cleared" in req.outcome


def test_critical_load_is_never_noticed_or_disconnected(org, templates):
    clinic = factories.customer(
        org.block_a, status="active", critical_load=True, critical_load_note="Health centre"
    )
    bill(clinic, "90000", issued=dt.date(2026, 6, 1), due=dt.date(2026, 6, 15))
    report = run(org, at(22))
    assert report.notices == 0 and any("critical load" in h for h in report.held)
    run(org, at(30))
    assert sent(clinic, "disconnection_warning") == []
    assert not disconnects(clinic).exists()


def test_other_sites_follow_their_own_policy(org, templates):
    BillingPolicy.objects.create(site=org.block_b, notice_days=30)
    a = factories.customer(org.block_a, status="active")
    b = factories.customer(org.block_b, status="active")
    for c in (a, b):
        bill(c, "1000", issued=dt.date(2026, 6, 1), due=dt.date(2026, 6, 15))
    policy.run(now=at(22))
    assert len(sent(a, "disconnection_warning")) == 1
    assert sent(b, "disconnection_warning") == []


def test_periodic_task_runs_the_policy_and_is_scheduled(org, owing):
    from metering.schedules import declared

    customer, _ = owing
    result = run_collections.delay(now=at(22).isoformat()).get()
    assert {r["site"]: r["notices"] for r in result}["kla"] == 1
    assert len(sent(customer, "disconnection_warning")) == 1
    (entry,) = [s for s in declared() if s.name == "collections.run"]
    assert entry.task == "billing.collections.tasks.run_collections"
    assert entry.every <= dt.timedelta(hours=1)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_runs_at_the_same_time_send_each_notice_once(org, templates):
    import threading

    from django.db import connection

    customer = factories.customer(org.block_a, status="active")
    bill(customer, "50000", issued=dt.date(2026, 6, 1), due=dt.date(2026, 6, 15))
    barrier, results = threading.Barrier(3), []

    def go():
        try:
            barrier.wait()
            results.append(policy.run_site(org.block_a, at(22)).notices)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each run did
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [0, 0, 1]
    assert len(sent(customer, "disconnection_warning")) == 1


def test_demo_sets_a_policy_and_runs_it(org, owing):
    import random

    from billing.collections import demo

    customer, _ = owing
    org.block_b.code = "kla-b"
    org.block_b.save()
    demo.load(now=at(22), rng=random.Random(1))
    assert BillingPolicy.for_site(org.block_b).notice_min_amount == D("5000")
    assert len(sent(customer, "disconnection_warning")) == 1


def test_disconnected_for_arrears_then_paid_up_asks_for_reconnection(org, owing):
    from billing import supply
    from customers import services as customer_services
    from mcoms.core.audit import acting_as

    customer, _ = owing
    run(org, at(22))
    run(org, at(29))
    (req,) = disconnects(customer)
    with acting_as(label="steering"):
        supply.close(request=req, status="done", outcome="Relay opened")
        customer_services.customer_set_status(customer=customer, status="disconnected")
    assert run(org, at(30)).reconnects == 0  # still owes
    pay(customer, "50000", on=dt.date(2026, 6, 30))
    assert run(org, at(30, 12)).reconnects == 1
    (back,) = SupplyRequest.objects.filter(customer=customer, action="reconnect")
    assert (back.reason, back.status) == ("top_up", "requested")
    assert run(org, at(30, 13)).reconnects == 0
    assert SupplyRequest.objects.filter(customer=customer, action="reconnect").count() == 1
