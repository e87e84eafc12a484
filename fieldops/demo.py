"""Demo field tasks for ``make run``: what the sync finds, plus a day's work for the agent.

Runs after every lower app's demo (INSTALLED_APPS order), so the demo's service requests,
shipped meters, alerts and field jobs are there: :func:`fieldops.work.sync` makes their
tasks exactly as the two-minute schedule would. Then the demo field agent on Kampala
Block A gets a hand-read and a payment collection; one task was visited this morning (with
a GPS position) and closed, one is in progress, and one task is left unassigned for the
supervisor's page. Everything goes through :mod:`fieldops.services`, so the histories and
the audit trail are real.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from customers.models import Customer
from fieldops import services, work
from fieldops.models import FieldTask
from mcoms.core.audit import acting_as
from mcoms.core.models import Site, User

K = FieldTask.Kind
# Kampala, near the demo site: a position as a phone would report it.
DEMO_LAT, DEMO_LON = Decimal("0.347596"), Decimal("32.582520")


def load(*, now: dt.datetime, rng) -> None:
    site = Site.objects.filter(code="kla-a").first()
    agent = User.objects.filter(username="agent").first()
    if site is None or agent is None:
        return
    customers = list(Customer.objects.filter(site=site).order_by("pk")[:6])
    with acting_as(label="demo data", channel="command"):
        work.sync(now=now)
        if len(customers) < 3:
            return
        made = []
        for customer, kind, title, hours in (
            (customers[0], K.READ, "Read the meter by hand: the bus cannot reach it", 4),
            (customers[1], K.COLLECT, "Collect the overdue bill", 30),
            (customers[2], K.FIX, "Lights flicker in the evening", 6),
        ):
            made.append(
                services.task_create(
                    site=site,
                    kind=kind,
                    title=f"{title} ({customer.full_name})",
                    customer=customer,
                    due_at=now + dt.timedelta(hours=hours),
                    assign_to=agent,
                    now=now - dt.timedelta(hours=5),
                )
            )
        services.task_create(
            site=site,
            kind=K.INSPECT,
            title="Check the seal on the ground-floor meter board",
            priority=FieldTask.Priority.LOW,
            due_at=now + dt.timedelta(days=3),
            now=now - dt.timedelta(hours=3),
        )
    _a_morning(made, agent, now, rng)


def _a_morning(tasks: list[FieldTask], agent: User, now: dt.datetime, rng) -> None:
    """The agent fixed the flicker this morning and is on the way to the hand-read."""
    read, _collect, fix = tasks
    with acting_as(agent, channel="agent_app"):
        services.visit_record(
            task=fix,
            by=agent,
            visited_at=now - dt.timedelta(hours=2),
            outcome="done",
            note="Loose neutral at the breaker tightened",
            latitude=DEMO_LAT + Decimal(rng.randint(-50, 50)) / 100000,
            longitude=DEMO_LON + Decimal(rng.randint(-50, 50)) / 100000,
            accuracy_m=rng.choice([8, 12, 20]),
            now=now - dt.timedelta(hours=2),
        )
        services.task_close(
            task=fix,
            by=agent,
            status="done",
            outcome="Neutral tightened; supply steady",
            now=now - dt.timedelta(hours=2),
        )
        services.task_start(task=read, by=agent, now=now - dt.timedelta(minutes=20))
