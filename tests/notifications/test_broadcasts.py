"""Staff messaging: one customer, a site, an arrears group or a site's field agents, with a
preview of recipients and cost, sent now or at a time, with progress.

People from ``org``: ``site_manager`` and ``billing`` may send messages on Block A;
``agent`` may not send. SMS goes through a fake Africa's Talking server on a local port.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from billing import ledger
from billing.ledger import Source
from customers import services as customer_services
from mcoms.core import clock
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from notifications import broadcasts, preferences
from notifications.models import Broadcast, Message, QuietHours
from tests import factories
from tests.notifications.fake_providers import FakeAfricasTalking

UTC = dt.UTC
NOW = dt.datetime(2026, 4, 6, 9, 0, tzinfo=UTC)  # 12:00 in Kampala
AT_BACKEND = "notifications.backends.africastalking.AfricasTalkingSMSBackend"


@pytest.fixture
def fake(settings):
    server = FakeAfricasTalking(username="mcoms", api_key="at-key")
    settings.SMS_BACKEND = AT_BACKEND
    settings.AFRICASTALKING_BASE_URL = server.base_url
    settings.AFRICASTALKING_USERNAME = "mcoms"
    settings.AFRICASTALKING_API_KEY = "at-key"
    settings.AFRICASTALKING_SENDER_ID = "MCOMS"
    settings.SMS_PROVIDER_TIMEOUT = 2
    yield server
    server.close()


@pytest.fixture
def people(org):
    """Block A: Amina owes 30,000, Kato 5,000, Opio (opted out) 50,000, Zed closed."""
    amina = factories.customer(org.block_a, first_name="Amina", language="sw")
    kato = factories.customer(org.block_a, first_name="Kato")
    opio = factories.customer(org.block_a, first_name="Opio")
    zed = factories.customer(org.block_a, first_name="Zed")
    with acting_as(label="test"):
        customer_services.customer_set_status(customer=zed, status="closed")
    factories.customer(org.block_b, first_name="Elsewhere")
    preferences.opt_out(opio.phone)
    with acting_as(org.billing):
        for who, owed in ((amina, 30000), (kato, 5000), (opio, 50000)):
            ledger.invoice_post(customer=who, date=dt.date(2026, 3, 1), energy=D(owed))
        ledger.payment_post(
            customer=kato, amount=D(1000), date=dt.date(2026, 3, 5), source=Source("bank")
        )
    return {"amina": amina, "kato": kato, "opio": opio, "zed": zed}


def names(recipients):
    return [r.name.split()[0] for r in recipients]


# --- Audiences and preview ------------------------------------------------------------------


def test_a_site_preview_lists_recipients_skips_and_cost(org, people, settings):
    settings.SMS_COST_PER_SEGMENT = "35"
    settings.SMS_COST_CURRENCY = "UGX"

    preview = broadcasts.preview(
        user=org.site_manager, site=org.block_a, audience="site", params={}, body="x" * 200
    )

    assert names(preview.to_send) == ["Amina", "Kato"]
    assert [(r.name.split()[0], r.skip) for r in preview.skipped] == [("Opio", "opted out")]
    assert preview.segments == 2 and preview.encoding == "gsm7"
    assert preview.cost == D("140.00")  # 2 recipients × 2 segments × 35
    assert preview.description == "All customers of Block A"


def test_the_cost_comes_from_what_the_sites_provider_charged(org, people, fake):
    # One earlier message through the provider: 0.80 KES for its one segment.
    with acting_as(label="test"):
        broadcasts.ensure_template()
        message = broadcasts.send_message(
            to="+256772000999",
            template="staff_broadcast",
            context={"text": "hi"},
            site_id=org.block_a.pk,
            now=NOW,
        )
    from notifications import services

    services.deliver(message.pk)
    message.refresh_from_db()
    message.created_at = NOW
    message.save()

    preview = broadcasts.preview(
        user=org.site_manager, site=org.block_a, audience="site", params={}, body="hello", now=NOW
    )
    assert (preview.cost_per_segment, preview.cost_currency) == (D("0.8000"), "KES")
    assert preview.cost == D("1.60")


def test_an_arrears_group_is_who_owes_more_than_the_amount(org, people):
    preview = broadcasts.preview(
        user=org.billing,
        site=org.block_a,
        audience="arrears",
        params={"min_amount": "3999"},
        body="Please pay.",
    )
    assert names(preview.recipients) == ["Amina", "Kato", "Opio"]
    for r in preview.recipients:
        owed = ledger.customer_balance(next(c for c in people.values() if c.pk == r.pk))
        assert r.detail == f"owes UGX {owed:,}"
    assert people["kato"] and "owes UGX 4,000" in [r.detail for r in preview.recipients]

    higher = broadcasts.preview(
        user=org.billing,
        site=org.block_a,
        audience="arrears",
        params={"min_amount": "30000"},
        body="Please pay.",
    )
    assert names(higher.recipients) == ["Opio"]  # owing exactly 30,000 is not more


def test_field_agents_of_the_site(org, people):
    org.agent.phone = "+256772111222"
    org.agent.save()
    org.outsider_agent.phone = "+256772111333"
    org.outsider_agent.save()

    preview = broadcasts.preview(
        user=org.site_manager, site=org.block_a, audience="agents", params={}, body="Meeting 9am"
    )

    assert [(r.phone, r.skip) for r in preview.recipients] == [("+256772111222", "")]


def test_one_customer_must_be_on_the_site_and_in_scope(org, people):
    elsewhere = factories.customer(org.jinja_town)
    with pytest.raises(ValidationError) as err:
        broadcasts.preview(
            user=org.site_manager,
            site=org.block_a,
            audience="customer",
            params={"customer_id": elsewhere.pk},
            body="hi",
        )
    assert "No such customer" in str(err.value)
    with pytest.raises(PermissionDenied):
        broadcasts.preview(
            user=org.site_manager, site=org.block_b, audience="site", params={}, body="hi"
        )


# --- Sending --------------------------------------------------------------------------------


def test_sending_now_messages_each_recipient_with_progress(
    org, people, fake, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), acting_as(org.site_manager):
        broadcast = broadcasts.broadcast_create(
            user=org.site_manager,
            site=org.block_a,
            audience="site",
            params={},
            body="Maintenance on Sunday 8-10am. Sorry for the trouble.",
            now=NOW,
        )

    broadcast.refresh_from_db()
    assert broadcast.status == Broadcast.Status.DONE
    assert (broadcast.total, broadcast.processed, broadcast.queued, broadcast.skipped) == (
        3,
        3,
        2,
        1,
    )
    sent = Message.objects.filter(about=broadcast.about)
    assert {m.to: m.status for m in sent} == {
        people["amina"].phone: "sent",
        people["kato"].phone: "sent",
        people["opio"].phone: "skipped",
    }
    assert {r.form["message"] for r in fake.requests} == {
        "Maintenance on Sunday 8-10am. Sorry for the trouble."
    }
    progress = broadcasts.progress(broadcast)
    assert (progress["sent"], progress["total"], progress["skipped"]) == (2, 3, 1)
    assert AuditEvent.objects.filter(object_type="notifications.broadcast").exists()


def test_a_scheduled_broadcast_waits_for_its_time(org, people, django_capture_on_commit_callbacks):
    # The task queued at creation runs at once (eagerly here) and finds it not due yet.
    now = clock.now()
    later = now + dt.timedelta(hours=3)
    with django_capture_on_commit_callbacks(execute=True), acting_as(org.billing):
        broadcast = broadcasts.broadcast_create(
            user=org.billing,
            site=org.block_a,
            audience="customer",
            params={"customer_id": people["kato"].pk},
            body="Your technician comes at 3pm.",
            scheduled_for=later,
            now=now,
        )

    assert broadcasts.send_due(now=now + dt.timedelta(hours=1)) == 0
    assert not Message.objects.filter(about=broadcast.about).exists()

    assert broadcasts.send_due(now=later) == 1
    (message,) = Message.objects.filter(about=broadcast.about)
    assert message.to == people["kato"].phone and message.body == "Your technician comes at 3pm."
    assert broadcasts.send_due(now=later + dt.timedelta(hours=1)) == 0  # sent once


def test_quiet_hours_hold_broadcast_messages(org, people):
    QuietHours.objects.create(start=dt.time(21), end=dt.time(7), timezone="Africa/Kampala")
    night = dt.datetime(2026, 4, 6, 19, 30, tzinfo=UTC)  # 22:30 in Kampala
    with acting_as(org.billing):
        broadcast = broadcasts.broadcast_create(
            user=org.billing,
            site=org.block_a,
            audience="customer",
            params={"customer_id": people["amina"].pk},
            body="Hello",
            now=night,
        )
    broadcasts.send(broadcast.pk, now=night)
    (message,) = Message.objects.filter(about=broadcast.about)
    assert message.not_before == dt.datetime(2026, 4, 7, 4, 0, tzinfo=UTC)


def test_a_stalled_send_resumes_without_messaging_anyone_twice(org, people):
    with acting_as(org.billing):
        broadcast = broadcasts.broadcast_create(
            user=org.billing, site=org.block_a, audience="site", params={}, body="Hi", now=NOW
        )
    # A worker claimed it, messaged Amina, and died.
    broadcasts.ensure_template()
    broadcasts.send_message(
        to=people["amina"].phone,
        template="staff_broadcast",
        context={"text": "Hi"},
        about=broadcast.about,
        now=NOW,
    )
    Broadcast.objects.filter(pk=broadcast.pk).update(status="sending", heartbeat_at=NOW)

    assert broadcasts.send_due(now=NOW + dt.timedelta(minutes=2)) == 0  # still alive
    assert broadcasts.send_due(now=NOW + dt.timedelta(minutes=10)) == 1

    tos = list(Message.objects.filter(about=broadcast.about).values_list("to", flat=True))
    assert sorted(tos) == sorted(
        [people["amina"].phone, people["kato"].phone, people["opio"].phone]
    )
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.processed, broadcast.total) == ("done", 3, 3)


def test_cancelling_a_scheduled_broadcast(org, people):
    with acting_as(org.billing):
        broadcast = broadcasts.broadcast_create(
            user=org.billing,
            site=org.block_a,
            audience="site",
            params={},
            body="Later",
            scheduled_for=NOW + dt.timedelta(days=1),
            now=NOW,
        )
        broadcasts.broadcast_cancel(broadcast=broadcast, user=org.billing)
        with pytest.raises(ValidationError, match="already cancelled"):
            broadcasts.broadcast_cancel(broadcast=broadcast, user=org.billing)
    assert broadcasts.send_due(now=NOW + dt.timedelta(days=2)) == 0
    assert not Message.objects.filter(about=broadcast.about).exists()


# --- Pages ----------------------------------------------------------------------------------


def form(org, **extra):
    data = {"site": org.block_a.pk, "audience": "site", "body": "Hello from the office"}
    data.update(extra)
    return data


def test_preview_then_send_from_the_page(
    org, people, client_for, settings, django_capture_on_commit_callbacks
):
    settings.SMS_COST_PER_SEGMENT = "35"
    settings.SMS_COST_CURRENCY = "UGX"
    client = client_for(org.site_manager)
    url = reverse("notifications:broadcast-new")

    page = client.post(url, form(org, action="preview")).content.decode()
    assert "2 to send, 1 skipped" in page
    assert "skipped: opted out" in page and "Opio" in page
    assert "about UGX 70.00" in page
    assert not Broadcast.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, form(org, action="send"))
    broadcast = Broadcast.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:broadcast-detail", args=[broadcast.pk])
    detail = client.get(response["Location"]).content.decode()
    assert "Handled 3 of 3 recipients" in detail and "2 of 3" in detail
    listing = client.get(reverse("notifications:broadcast-list")).content.decode()
    assert "All customers of Block A" in listing


def test_a_scheduled_send_from_the_page_is_in_site_time(org, people, client_for):
    client = client_for(org.billing)
    response = client.post(
        reverse("notifications:broadcast-new"),
        form(org, action="send", send_at="2099-01-10T08:30"),
    )
    assert response.status_code == 302
    broadcast = Broadcast.objects.get()
    assert broadcast.scheduled_for == dt.datetime(2099, 1, 10, 5, 30, tzinfo=UTC)
    assert broadcast.status == "scheduled"
    assert not Message.objects.filter(about=broadcast.about).exists()
    page = client.get(reverse("notifications:broadcast-detail", args=[broadcast.pk]))
    assert "2099-01-10 08:30" in page.content.decode()

    client.post(reverse("notifications:broadcast-cancel", args=[broadcast.pk]))
    broadcast.refresh_from_db()
    assert broadcast.status == "cancelled"


def test_bad_input_is_explained_and_keeps_the_text(org, people, client_for):
    client = client_for(org.billing)
    url = reverse("notifications:broadcast-new")

    response = client.post(url, form(org, audience="arrears", action="preview"))
    assert response.status_code == 400
    assert "Give the amount owed" in response.content.decode()
    assert "Hello from the office" in response.content.decode()

    response = client.post(url, form(org, audience="customer", customer="KLA-99999"))
    assert "No customer &#x27;KLA-99999&#x27; on Block A" in response.content.decode()

    response = client.post(url, form(org, site=org.block_b.pk, action="send"))
    assert response.status_code == 400  # not a site in their scope
    assert not Broadcast.objects.exists()


def test_one_customer_by_account_number_from_the_page(org, people, client_for):
    page = client_for(org.billing).post(
        reverse("notifications:broadcast-new"),
        form(org, audience="customer", customer=people["amina"].account_number, action="preview"),
    )
    assert "1 to send" in page.content.decode()


def test_pages_need_the_messaging_capability_and_scope(org, people, client_for):
    assert client_for(org.agent).get(reverse("notifications:broadcast-new")).status_code == 403
    assert client_for(org.agent).get(reverse("notifications:broadcast-list")).status_code == 403
    with acting_as(org.admin):
        other = broadcasts.broadcast_create(
            user=org.admin,
            site=org.jinja_town,
            audience="site",
            params={},
            body="Jinja only",
            scheduled_for=NOW + dt.timedelta(days=1),
            now=NOW,
        )
    response = client_for(org.site_manager).get(
        reverse("notifications:broadcast-detail", args=[other.pk])
    )
    assert response.status_code == 404
