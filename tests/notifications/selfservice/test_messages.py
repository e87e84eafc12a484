"""The self-service SMS templates, and the session clean-up."""

from __future__ import annotations

import datetime as dt

import pytest

from mcoms.core import clock
from notifications.models import MessageTemplate
from notifications.selfservice import messages, tasks
from notifications.selfservice.models import UssdSession
from notifications.selfservice.schedules import SCHEDULES

pytestmark = pytest.mark.django_db


def test_install_templates_adds_every_key_in_three_languages_once():
    created = messages.install_templates()
    assert len(created) == len(messages.DEFAULTS) * 3
    rows = MessageTemplate.objects.filter(key__startswith="selfservice_")
    assert {(r.key, r.language) for r in rows} == {
        (key, lang) for key in messages.DEFAULTS for lang in ("en", "sw", "lg")
    }
    assert all(r.essential for r in rows)
    MessageTemplate.objects.filter(key=messages.HELP, language="en").update(body="Edited")
    assert messages.install_templates() == []
    assert MessageTemplate.objects.get(key=messages.HELP, language="en").body == "Edited"


def test_sending_installs_missing_templates_first(org):
    from tests import factories

    customer = factories.customer(org.block_a, first_name="Amina")
    message = messages.send(customer, messages.ONE_TIME_PIN, {"pin": "4821"})
    assert message.body.startswith("Your one-time USSD PIN is 4821.")
    assert MessageTemplate.objects.filter(key=messages.HELP_UNKNOWN).count() == 3


def test_default_wording_fits_one_sms_where_it_can():
    from notifications.segments import count_segments

    for key, by_language in messages.DEFAULTS.items():
        for language, body in by_language.items():
            assert body.isascii(), (key, language)
            assert count_segments(body) <= 2, (key, language)


def test_old_sessions_are_purged():
    now = clock.now()
    for sid, age in (("old", dt.timedelta(days=3)), ("new", dt.timedelta(minutes=2))):
        UssdSession.objects.create(
            session_id=sid, phone="+256772000001", started_at=now - age, updated_at=now - age
        )
    assert tasks.purge_sessions() == 1
    assert list(UssdSession.objects.values_list("session_id", flat=True)) == ["new"]
    [entry] = SCHEDULES
    assert entry["task"] == "notifications.selfservice.tasks.purge_sessions"
