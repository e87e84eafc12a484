"""Staff pages for message templates: list with missing translations, edit, preview."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mcoms.core.models import AuditEvent
from notifications import catalog
from notifications.models import MessageTemplate

pytestmark = pytest.mark.django_db


@pytest.fixture
def installed(db):
    catalog.install_defaults()


def _edit(key="bill_issued", language="sw", channel="sms"):
    return reverse("notifications:template-edit", args=[key, language, channel])


def _preview(key="bill_issued", language="sw", channel="sms"):
    return reverse("notifications:template-preview", args=[key, language, channel])


def test_list_shows_every_event_and_missing_translations(org, client_for, installed):
    MessageTemplate.objects.filter(key="low_balance", language="lg").delete()
    page = client_for(org.billing).get(reverse("notifications:templates"))
    assert page.status_code == 200
    text = page.content.decode()
    for event in catalog.EVENTS:
        assert event.title in text
    assert "1 translation missing" in text
    assert _preview("low_balance", "en") in text
    assert _edit() not in text  # a billing officer may look, not edit
    admin_page = client_for(org.admin).get(reverse("notifications:templates")).content.decode()
    assert _edit("low_balance", "lg") in admin_page


def test_preview_shows_rendered_text_characters_and_segments(org, client_for, installed):
    page = client_for(org.site_manager).get(_preview("payment_received", "en"))
    text = page.content.decode()
    assert "Payment received: UGX 20,000 (ref MP2611ABC). New balance UGX 4,500." in text
    body = catalog.check(
        MessageTemplate.objects.get(key="payment_received", language="en").body,
        key="payment_received",
    )
    assert f"{len(body)} characters" in text
    assert "GSM-7 · 1 SMS segment" in text
    MessageTemplate.objects.filter(key="payment_received", language="lg").update(
        body="{{ name }}, ŋŋ " + "x" * 80
    )
    lg = client_for(org.site_manager).get(_preview("payment_received", "lg")).content.decode()
    assert "Unicode (UCS-2) · 2 SMS segments" in lg


def test_non_admins_get_403_on_edit_and_staff_without_messages_on_all(org, client_for, installed):
    for person in [org.regional, org.site_manager, org.billing]:
        assert client_for(person).get(_edit()).status_code == 403
        assert client_for(person).post(_edit(), {"body": "x", "save": "1"}).status_code == 403
    for person in [org.agent, org.customer]:
        assert client_for(person).get(reverse("notifications:templates")).status_code == 403
        assert client_for(person).get(_preview()).status_code == 403
    assert client_for(org.admin).get(_edit()).status_code == 200
    assert client_for(org.admin).get(_edit("no_such_event")).status_code == 404
    assert client_for(org.admin).get(_edit(channel="email")).status_code == 404


def test_edit_refuses_a_template_that_does_not_render(org, client_for, installed):
    client = client_for(org.admin)
    before = MessageTemplate.objects.get(key="bill_issued", language="sw").body
    bad_syntax = client.post(_edit(), {"body": "Bili {% if amount %}", "save": "1"})
    assert bad_syntax.status_code == 200
    assert "Template syntax error" in bad_syntax.content.decode()
    unknown = client.post(_edit(), {"body": "Bili {{ ammount }}", "save": "1"})
    assert "Unknown variable: ammount" in unknown.content.decode()
    assert MessageTemplate.objects.get(key="bill_issued", language="sw").body == before
    assert not AuditEvent.objects.filter(object_type="notifications.messagetemplate").exists()


def test_edit_saves_good_wording_and_audits_it(org, client_for, installed):
    client = client_for(org.admin)
    body = "{{ name }}, bili ya {{ period }}: {{ currency }} {{ amount }}."
    preview = client.post(_edit(), {"body": body, "preview": "1"})
    assert "Amina, bili ya Oct 2026: UGX 24,500." in preview.content.decode()
    row = MessageTemplate.objects.get(key="bill_issued", language="sw", channel="sms")
    assert row.body != body  # a preview saves nothing
    saved = client.post(_edit(), {"body": body, "save": "1"})
    assert saved.status_code == 302 and saved["Location"] == _preview()
    row.refresh_from_db()
    assert row.body == body
    event = AuditEvent.objects.get(object_type="notifications.messagetemplate")
    assert (event.action, event.actor, event.object_id) == ("update", org.admin, str(row.pk))
    assert event.after["body"] == body and event.before["body"] != body


def test_adding_a_missing_translation_creates_it(org, client_for, installed):
    MessageTemplate.objects.filter(key="gateway_silent", language="lg", channel="email").delete()
    client = client_for(org.admin)
    form = client.get(_edit("gateway_silent", "lg", "email")).content.decode()
    assert "esirise" in form  # the default wording is offered
    saved = client.post(
        _edit("gateway_silent", "lg", "email"),
        {"subject": "{{ site }}: {{ gateway }}", "body": "{{ message }}.", "save": "1"},
    )
    assert saved.status_code == 302
    row = MessageTemplate.objects.get(key="gateway_silent", language="lg", channel="email")
    assert (row.subject, row.essential) == ("{{ site }}: {{ gateway }}", True)
    assert AuditEvent.objects.filter(action="create", object_id=str(row.pk)).exists()


def test_the_admin_checks_template_wording_too(org, client_for):
    from django.urls import reverse

    from notifications.models import MessageTemplate

    client = client_for(org.admin)
    form = {
        "key": "payment_received",
        "language": "en",
        "channel": "sms",
        "subject": "",
        "body": "Paid {{ amont }}",
        "essential": "on",
    }
    response = client.post(reverse("admin:notifications_messagetemplate_add"), form)
    assert response.status_code == 200
    assert "Unknown variable: amont" in response.content.decode()
    assert not MessageTemplate.objects.filter(body="Paid {{ amont }}").exists()
    assert client.get(reverse("admin:notifications_optout_changelist")).status_code == 200
    assert client.get(reverse("admin:notifications_quiethours_changelist")).status_code == 200
