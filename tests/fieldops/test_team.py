"""The supervisor's team page: each agent's sales and collections today and this week, their
tasks, unassigned tasks with an assign control, and a message to the team.

The clock: Wednesday 8 April 2026, 12:00 in Kampala; the week began Monday 6 April.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.urls import reverse

from billing.payments import services as payments
from fieldops import services, team_views
from fieldops.models import FieldTask
from mcoms.core import clock
from mcoms.core.audit import acting_as
from notifications.models import Broadcast, Message
from tests import factories

T = FieldTask
KLA = dt.timezone(dt.timedelta(hours=3))
NOW = dt.datetime(2026, 4, 8, 12, 0, tzinfo=KLA)


def local(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 4, day, hour, tzinfo=KLA)


@pytest.fixture
def takings(field):
    """agent: 2 cash today (10,000 + 5,000), 1 cash Monday (20,000), 1 last Sunday (99,000);
    agent2: 1 cash today (7,500); an agent of Jinja Town takes cash there (not our team)."""
    amina = factories.customer(field.block_a, first_name="Amina")
    far = factories.customer(field.jinja_town, first_name="Far")
    for agent, amount, when in (
        (field.agent, "10000", local(8, 9)),
        (field.agent, "5000", local(8, 0)),
        (field.agent, "20000", local(6, 0)),
        (field.agent, "99000", local(5, 23)),
        (field.agent2, "7500", local(8, 11)),
    ):
        with acting_as(agent):
            payments.record_cash(customer=amina, amount=D(amount), agent=agent, received_at=when)
    with acting_as(field.outsider_agent):
        payments.record_cash(
            customer=far, amount=D("1000"), agent=field.outsider_agent, received_at=local(8, 9)
        )
    return field


def test_figures_per_agent_today_and_this_week(takings):
    org = takings
    with acting_as(label="test setup"):
        done = services.task_create(
            site=org.block_a, kind=T.Kind.READ, title="Read", assign_to=org.agent
        )
        services.task_create(site=org.block_a, kind=T.Kind.FIX, title="Fix", assign_to=org.agent)
    with acting_as(org.agent):
        services.task_close(
            task=done, by=org.agent, status="done", outcome="read", now=local(8, 10)
        )

    rows = {r["agent"].username: r for r in team_views.team_rows(org.block_a, NOW)}

    assert set(rows) == {"agent", "agent2"}
    agent, agent2 = rows["agent"], rows["agent2"]
    assert (agent["today"].payments, agent["today"].amount, agent["today"].cash) == (
        2,
        D("15000"),
        D("15000"),
    )
    assert (agent["week"].payments, agent["week"].amount) == (3, D("35000"))
    assert (agent2["today"].payments, agent2["week"].cash) == (1, D("7500"))
    assert (agent["open"], agent["done_today"], agent["done_week"]) == (1, 1, 1)
    assert (agent2["open"], agent2["done_today"]) == (0, 0)


def test_the_team_page_shows_the_figures_to_the_supervisor_only(field, client_for):
    now = clock.now().astimezone(field.block_a.zone)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = midnight + (now - midnight) / 2  # surely today, whatever the hour
    amina = factories.customer(field.block_a, first_name="Amina")
    for agent, amount, when in (
        (field.agent, "10000", today),
        (field.agent, "5000", today),
        (field.agent2, "7500", today),
        (field.agent, "99000", midnight - dt.timedelta(days=8)),
    ):
        with acting_as(agent):
            payments.record_cash(customer=amina, amount=D(amount), agent=agent, received_at=when)

    page = client_for(field.supervisor).get(reverse("fieldops:team"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "Agent" in body and "Agnes Second" in body
    assert "2 paid · 15,000" in body and "1 paid · 7,500" in body
    assert "3 paid · 22,500" in body  # the team today
    assert "99,000" not in body
    assert client_for(field.agent).get(reverse("fieldops:team")).status_code == 403
    jinja = reverse("fieldops:team") + f"?site={field.jinja_town.pk}"
    assert client_for(field.supervisor).get(jinja).status_code == 403


def test_the_supervisor_assigns_an_unassigned_task_and_the_agent_is_told(
    field, client_for, django_capture_on_commit_callbacks
):
    with acting_as(label="test setup"):
        loose = services.task_create(site=field.block_a, kind=T.Kind.READ, title="Read meter 7")
    supervisor = client_for(field.supervisor)
    page = supervisor.get(reverse("fieldops:team")).content.decode()
    assert "Read meter 7" in page and f'id="ft-to-{loose.pk}"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = supervisor.post(
            reverse("fieldops:task-assign", args=[loose.pk]),
            {"to": field.agent2.pk, "next": reverse("fieldops:team")},
        )
    assert response.status_code == 302 and response.url == reverse("fieldops:team")
    loose.refresh_from_db()
    assert loose.assigned_to == field.agent2 and loose.status == T.Status.ASSIGNED
    (sms,) = Message.objects.filter(template_key="staff_assignment")
    assert sms.to == field.agent2.phone and "Read meter 7" in sms.body
    assert "Read meter 7" not in supervisor.get(reverse("fieldops:team")).content.decode()


def test_a_message_to_the_team_is_previewed_then_sent_to_the_sites_agents(
    field, client_for, django_capture_on_commit_callbacks
):
    supervisor = client_for(field.supervisor)
    text = "Team meeting at the office, 8am tomorrow."
    target = reverse("fieldops:team-message")
    form = {"site": field.block_a.pk, "body": text}
    preview = supervisor.post(target, {**form, "preview": "1"})
    body = preview.content.decode()
    assert preview.status_code == 200
    assert "2 recipients" in body and field.agent.phone in body and field.agent2.phone in body
    assert field.outsider_agent.phone not in body
    assert not Broadcast.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        sent = supervisor.post(target, {**form, "send": "1"})
    assert sent.status_code == 302
    broadcast = Broadcast.objects.get()
    assert (
        broadcast.audience == Broadcast.Audience.AGENTS and broadcast.created_by == field.supervisor
    )
    messages = Message.objects.filter(template_key="staff_broadcast")
    assert sorted(m.to for m in messages) == sorted([field.agent.phone, field.agent2.phone])
    assert {m.body for m in messages} == {text}

    empty = supervisor.post(target, {**form, "body": "", "send": "1"})
    assert empty.status_code == 400 and "This field is required" in empty.content.decode()
    assert client_for(field.agent).post(target, {**form, "send": "1"}).status_code == 403
