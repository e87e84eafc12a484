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
import importlib
import importlib.util
from dataclasses import dataclass

from django.apps import apps
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
        name="metering.check_usage_anomalies",
        task="metering.anomaly_tasks.check_usage_anomalies",
        every=dt.timedelta(hours=1),
        description="Every meter's last hour through the usage detectors (control charts).",
    ),
    Schedule(
        name="metering.check_power_quality",
        task="metering.anomaly_tasks.check_power_quality",
        every=dt.timedelta(hours=1),
        description="Voltage, frequency, power factor and phase balance of the last hour.",
    ),
    Schedule(
        name="metering.check_outages",
        task="metering.anomaly_tasks.check_outages",
        every=dt.timedelta(minutes=5),
        description="Open, follow and end outage incidents (many meters of a site at once).",
    ),
    Schedule(
        name="metering.escalate_alerts",
        task="metering.anomaly_tasks.escalate_alerts",
        every=dt.timedelta(minutes=5),
        description="Alerts nobody acknowledged in time go to the next level of managers.",
    ),
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


def declared() -> tuple[Schedule, ...]:
    """Metering's schedules and every other app's, from its ``<app>.schedules`` module.

    Another app declares ``SCHEDULES`` there as a tuple of dicts with ``name`` (starting
    with the app's label and a dot), ``task``, ``every`` (a timedelta) and
    ``description``. Metering imports no app above it: the modules are found by name.
    """
    found = list(SCHEDULES)
    for config in apps.get_app_configs():
        module_name = f"{config.name}.schedules"
        if config.name == "metering" or importlib.util.find_spec(config.name) is None:
            continue
        if importlib.util.find_spec(module_name) is None:
            continue
        for entry in importlib.import_module(module_name).SCHEDULES:
            if not entry["name"].startswith(f"{config.label}."):
                raise ValueError(f"{entry['name']} must start with {config.label}.")
            found.append(Schedule(**entry))
    return tuple(found)


def _prefixes() -> tuple[str, ...]:
    return tuple(f"{config.label}." for config in apps.get_app_configs())


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
def sync(schedules: tuple[Schedule, ...] | None = None) -> dict[str, list[str]]:
    """Load ``schedules`` (default: :func:`declared`) into django-celery-beat.

    Returns names by what happened to them. Entries of our apps (named ``<label>.``)
    that are no longer declared are disabled.
    """
    if schedules is None:
        schedules = declared()
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
    names = {s.name for s in schedules}
    ours = PeriodicTask.objects.filter(enabled=True).exclude(name__in=names)
    stale = [t for t in ours if t.name.startswith(_prefixes())]
    for task in stale:
        task.enabled = False
        task.save()  # through save(), so a running beat notices
        report["disabled"].append(task.name)
    report["templates"] = ensure_templates()
    return report
