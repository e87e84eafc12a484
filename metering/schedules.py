"""Metering's periodic tasks, declared here and loaded into django-celery-beat by :func:`sync`.

Beat reads its schedule from the database (``DatabaseScheduler``); this module is
the source of truth for metering's entries. :func:`sync` is idempotent: it creates
what is missing, corrects what drifted, leaves the rest untouched, and disables
entries of ours (names starting ``metering.``) that are no longer declared. It also
creates the English message templates the watch sends, without touching templates a
person has edited. Run it with ``manage.py sync_schedules``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from metering import partition_tasks
from notifications.models import Channel, Language, MessageTemplate

PREFIX = "metering."


@dataclass(frozen=True)
class Schedule:
    """One periodic task: a unique name, the Celery task and how often it runs."""

    name: str
    task: str
    every: dt.timedelta
    description: str


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        name="metering.check_missing_reads",
        task="metering.watch_tasks.check_missing_reads",
        every=dt.timedelta(minutes=5),
        description="Alert on meters with missing reads and silent gateways; clear on return.",
    ),
    Schedule(**partition_tasks.SCHEDULE),
    Schedule(
        name="notifications.release_deferred",
        task="notifications.tasks.release_deferred",
        every=dt.timedelta(minutes=1),
        description="Send messages held for quiet hours once their time has come.",
    ),
)

# (key, channel, subject, body): English wording of the watch's messages.
TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    (
        "meter_not_reporting",
        Channel.SMS,
        "",
        "MCOMS {{ site }}: {{ count }} meter{{ count|pluralize }} sent no reading for over "
        "{{ hours }} h: {{ meters }}. Please check on site.",
    ),
    (
        "meter_not_reporting",
        Channel.EMAIL,
        "{{ site }}: {{ count }} meter{{ count|pluralize }} not reporting",
        "{{ count }} meter{{ count|pluralize }} at {{ site }} sent no reading for over "
        "{{ hours }} hours: {{ meters }}.\n\n{{ message }}.\n\n"
        "Please check the meter{{ count|pluralize }}, the bus wiring and the gateway.",
    ),
    (
        "gateway_silent",
        Channel.SMS,
        "",
        "MCOMS {{ site }}: {{ message }}. {{ meters_on_bus }} meter{{ meters_on_bus|pluralize }} "
        "on its bus cannot report. Please check power and network at the gateway.",
    ),
    (
        "gateway_silent",
        Channel.EMAIL,
        "{{ site }}: gateway {{ gateway }} is silent",
        "{{ message }}.\n\n{{ meters_on_bus }} meter{{ meters_on_bus|pluralize }} on its bus "
        "cannot report until it is back. Please check power and network at the gateway.",
    ),
)


def _interval(every: dt.timedelta) -> IntervalSchedule:
    seconds = int(every.total_seconds())
    found = IntervalSchedule.objects.filter(every=seconds, period=IntervalSchedule.SECONDS).first()
    return found or IntervalSchedule.objects.create(every=seconds, period=IntervalSchedule.SECONDS)


def ensure_templates() -> list[str]:
    """Create the English templates that are missing; returns the ones created."""
    created = []
    for key, channel, subject, body in TEMPLATES:
        _, new = MessageTemplate.objects.get_or_create(
            key=key,
            language=Language.ENGLISH,
            channel=channel,
            defaults={"subject": subject, "body": body},
        )
        if new:
            created.append(f"{key} ({channel})")
    return created


@transaction.atomic
def sync(schedules: tuple[Schedule, ...] = SCHEDULES) -> dict[str, list[str]]:
    """Load ``schedules`` into django-celery-beat; returns names by what happened to them."""
    report: dict[str, list[str]] = {
        "created": [],
        "updated": [],
        "unchanged": [],
        "disabled": [],
        "templates": [],
    }
    for schedule in schedules:
        wanted = {
            "task": schedule.task,
            "interval": _interval(schedule.every),
            "crontab": None,
            "solar": None,
            "clocked": None,
            "enabled": True,
            "one_off": False,
            "description": schedule.description,
        }
        task = PeriodicTask.objects.filter(name=schedule.name).first()
        if task is None:
            PeriodicTask.objects.create(name=schedule.name, **wanted)
            report["created"].append(schedule.name)
            continue
        changed = [k for k, v in wanted.items() if getattr(task, k) != v]
        if changed:
            for key in changed:
                setattr(task, key, wanted[key])
            task.save()
            report["updated"].append(schedule.name)
        else:
            report["unchanged"].append(schedule.name)
    declared = {s.name for s in schedules}
    stale = PeriodicTask.objects.filter(name__startswith=PREFIX, enabled=True).exclude(
        name__in=declared
    )
    for task in stale:
        task.enabled = False
        task.save()  # through save(), so a running beat notices
        report["disabled"].append(task.name)
    report["templates"] = ensure_templates()
    return report
