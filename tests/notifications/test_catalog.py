"""The catalogue of events: default wording in three languages, installed idempotently."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from notifications import catalog, services
from notifications.models import MessageTemplate
from notifications.segments import encoding_for, segment_info

pytestmark = pytest.mark.django_db

REQUIRED = {
    "customer_registered",
    "bill_issued",
    "payment_received",
    "due_date_reminder",
    "disconnection_warning",
    "disconnected",
    "reconnected",
    "low_balance",
    "abnormal_usage",
    "meter_offline",
    "site_outage",
    "service_request_update",
    "staff_assignment",
    "meter_not_reporting",
    "gateway_silent",
}


def test_every_event_is_catalogued_with_all_three_languages_that_render():
    assert set(catalog.BY_KEY) >= REQUIRED
    for event in catalog.EVENTS:
        assert set(event.defaults) == {"en", "sw", "lg"}, event.key
        for language, by_channel in event.defaults.items():
            assert set(by_channel) == set(event.channels), (event.key, language)
            for channel, (subject, body) in by_channel.items():
                text = catalog.check(body, key=event.key)
                assert text and "{" not in text, (event.key, language)
                if channel == "email":
                    assert catalog.check(subject, key=event.key)
                else:
                    assert encoding_for(text) == "gsm7", (event.key, language, text)
                    # customer SMS fit one segment with the sample data
                    if event.audience == "customer":
                        assert segment_info(text).segments == 1, (event.key, language, text)


def test_receipts_and_disconnection_notices_are_essential_reminders_are_not():
    for key in ["payment_received", "disconnection_warning", "disconnected", "bill_issued"]:
        assert catalog.is_essential(key) is True
    for key in ["due_date_reminder", "low_balance", "abnormal_usage", "site_outage"]:
        assert catalog.is_essential(key) is False
    assert catalog.is_essential("no_such_event") is None


def test_install_is_idempotent_and_keeps_staff_edits():
    created = catalog.install_defaults()
    expected = sum(len(e.channels) * 3 for e in catalog.EVENTS)
    assert len(created) == expected == MessageTemplate.objects.count()
    row = MessageTemplate.objects.get(key="bill_issued", language="sw", channel="sms")
    row.body = "Bili: {{ amount }}"
    row.save()
    stamps = dict(MessageTemplate.objects.values_list("pk", "updated_at"))
    assert catalog.install_defaults() == []
    assert dict(MessageTemplate.objects.values_list("pk", "updated_at")) == stamps
    assert MessageTemplate.objects.get(pk=row.pk).body == "Bili: {{ amount }}"
    assert MessageTemplate.objects.get(pk=row.pk).essential is True


def test_install_adds_only_the_missing_and_fixes_the_essential_flag():
    MessageTemplate.objects.create(key="payment_received", language="en", body="Paid {{ amount }}")
    catalog.install_defaults()
    row = MessageTemplate.objects.get(key="payment_received", language="en", channel="sms")
    assert (row.body, row.essential) == ("Paid {{ amount }}", True)


def test_preferred_language_with_english_fallback():
    catalog.install_defaults()
    sample = catalog.BY_KEY["payment_received"].sample
    sw = services.render("payment_received", language="sw", channel="sms", context=sample)
    assert sw.language == "sw" and sw.body.startswith("Malipo yamepokelewa: UGX 20,000")
    lg = services.render("payment_received", language="lg", channel="sms", context=sample)
    assert lg.language == "lg" and "Webale, Amina" in lg.body
    MessageTemplate.objects.filter(key="payment_received", language="lg").delete()
    fallback = services.render("payment_received", language="lg", channel="sms", context=sample)
    assert fallback.language == "en" and fallback.body.startswith("Payment received")


def test_check_reports_syntax_errors_and_unknown_variables():
    with pytest.raises(catalog.TemplateInvalid, match="syntax"):
        catalog.check("Hello {% if name %}", key="reconnected")
    with pytest.raises(catalog.TemplateInvalid, match="Unknown variable: balanse"):
        catalog.check("Hello {{ name }}, {{ balanse }}", key="reconnected")
    with pytest.raises(catalog.TemplateInvalid, match="customer.frist_name"):
        catalog.check("Hi {{ customer.frist_name }}", key="customer_registered")
    assert catalog.check("Hi {{ name|upper }}", key="reconnected") == "Hi AMINA"


def test_management_command_installs_then_reports_nothing_new():
    out = StringIO()
    call_command("install_templates", stdout=out)
    assert "created bill_issued (lg, sms)" in out.getvalue()
    out = StringIO()
    call_command("install_templates", stdout=out)
    assert out.getvalue().strip() == "0 template(s) created"


def test_check_knows_the_names_loops_and_with_blocks_define():
    text = (
        "{% for m in meters %}{{ forloop.counter }}:{{ m }} {% endfor %}"
        "{% with n=site %}{{ n }}{% endwith %}"
    )
    sample = {"meters": ["SM-1", "SM-2"], "site": "Block A"}
    assert catalog.check(text, key="meter_not_reporting", context=sample) == "1:SM-1 2:SM-2 Block A"
