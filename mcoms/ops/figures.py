"""The figures operations watch, their thresholds, and the checks against them.

:func:`collect` gathers every figure from the database (and the broker), through each
app's query module: ``/metrics`` prints them in Prometheus' text format
(:mod:`mcoms.ops.metrics`), the operations page shows them with their checks, and the
periodic watch (:mod:`mcoms.ops.watch`) tells staff when a check fails. One source for
all three, so the page, the scrape and the alert never disagree.

Windows: readings and task failures count over the last hour, messages over the last
day — gauges, not counters: a figure derived from tables cannot reset or double count
when a process restarts, and ``rate()`` is not needed to read them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django_celery_beat.models import PeriodicTask

from billing import ops_queries as billing_ops
from mcoms.core import clock, outbox
from mcoms.ops.models import ProviderBalance, TaskFailure, Threshold
from metering import ops_queries as metering_ops
from notifications import ops_queries as messaging_ops

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
# A schedule is overdue when it has not run for its interval plus this much (at least),
# or twice its interval: beat writes last_run_at every few minutes, not at each run.
BEAT_GRACE = dt.timedelta(minutes=10)
# A billing run that has not moved for this long is stuck.
RUN_STUCK_AFTER = dt.timedelta(hours=2)
QUEUE = "celery"


@dataclass(frozen=True)
class Limit:
    key: str
    title: str
    default: Decimal
    kind: str  # "max": the figure must stay at or below; "min": at or above
    unit: str = ""


# The checks' limits; an admin changes them on the operations page (``Threshold`` rows).
THRESHOLDS: tuple[Limit, ...] = (
    Limit("readings_rejected_per_hour", "Readings rejected in the last hour", Decimal(100), "max"),
    Limit(
        "ingest_latency_p95_seconds", "Ingest latency, 95th percentile", Decimal(1800), "max", "s"
    ),
    Limit("celery_queue_depth", "Tasks waiting in the queue", Decimal(1000), "max"),
    Limit("celery_task_failures_per_hour", "Task failures in the last hour", Decimal(5), "max"),
    Limit("beat_overdue_schedules", "Schedules beat has not run in time", Decimal(0), "max"),
    Limit("gateways_offline", "Gateways offline", Decimal(0), "max"),
    Limit("messages_failed_per_day", "Messages failed in the last day", Decimal(20), "max"),
    Limit(
        "messages_waiting_seconds", "Oldest message waiting to be sent", Decimal(1800), "max", "s"
    ),
    Limit("sms_balance", "SMS provider credit", Decimal(500), "min"),
    Limit("billing_runs_stuck", "Billing runs stuck", Decimal(0), "max"),
    Limit("billing_runs_failed", "Billing runs failed in the last week", Decimal(0), "max"),
)
LIMITS = {limit.key: limit for limit in THRESHOLDS}


def thresholds() -> dict[str, Decimal]:
    """Every limit: the admin's value where set, else the default."""
    values = {limit.key: limit.default for limit in THRESHOLDS}
    values.update(dict(Threshold.objects.filter(key__in=values).values_list("key", "value")))
    return values


@dataclass
class Metric:
    name: str
    help: str
    type: str = "gauge"
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value, **labels) -> Metric:
        self.samples.append((labels, float(value)))
        return self

    def value(self, **labels) -> float | None:
        for have, value in self.samples:
            if have == labels:
                return value
        return None


@dataclass
class Check:
    key: str
    title: str
    value: float | None
    limit: Decimal
    kind: str
    unit: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        if self.value is None:  # unknown (e.g. no balance yet): not an alarm by itself
            return True
        if self.kind == "min":
            return Decimal(str(self.value)) >= self.limit
        return Decimal(str(self.value)) <= self.limit

    @property
    def shown(self) -> str:
        if self.value is None:
            return "unknown"
        number = f"{self.value:,.0f}" if float(self.value).is_integer() else f"{self.value:,.2f}"
        return f"{number} {self.unit}".strip()


@dataclass
class Report:
    at: dt.datetime
    metrics: list[Metric]
    checks: list[Check]
    beat: list[dict]
    offline_gateways: list[str]
    balance: ProviderBalance | None

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)

    @property
    def failing(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


def quantile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile by nearest rank (0 for no values)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _interval(task: PeriodicTask) -> dt.timedelta | None:
    if task.interval_id is None:
        return None
    return dt.timedelta(**{task.interval.period: task.interval.every})


def _duration(every: dt.timedelta) -> str:
    seconds = int(every.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} s"


def beat_schedules(now: dt.datetime) -> list[dict]:
    """Each enabled periodic task: its interval, when beat last ran it, whether overdue."""
    rows = []
    tasks = PeriodicTask.objects.filter(enabled=True, one_off=False).select_related("interval")
    for task in tasks.order_by("name"):
        if task.name.startswith("celery.backend_cleanup"):
            continue
        every = _interval(task)
        since = task.last_run_at or task.date_changed
        age = (now - since).total_seconds() if since else None
        overdue = False
        if every is not None and age is not None:
            allowed = every + max(every, BEAT_GRACE)
            overdue = age > allowed.total_seconds()
        rows.append(
            {
                "name": task.name,
                "task": task.task,
                "every": every.total_seconds() if every else None,
                "every_text": _duration(every) if every else "(not an interval)",
                "last_run_at": task.last_run_at,
                "age": age,
                "overdue": overdue,
            }
        )
    return rows


def queue_depth(queue: str = QUEUE, url: str | None = None) -> int | None:
    """Tasks waiting in a Celery queue; None when the broker cannot be reached.

    Asks the broker itself (Redis: the list's length; the development filesystem
    transport: the files waiting), so it is the same from every process.
    """
    from mcoms.celery import app

    try:
        with app.connection_for_read(url) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            channel = conn.default_channel
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as exc:  # a missing queue means nothing waits; anything else: down
        if "NOT_FOUND" in str(exc) or "no queue" in str(exc).lower():
            return 0
        return None


def collect(now: dt.datetime | None = None) -> Report:
    now = clock.resolve(now)
    limits = thresholds()
    metrics: list[Metric] = []

    def metric(name, help_, type_="gauge") -> Metric:
        m = Metric(f"mcoms_{name}", help_, type_)
        metrics.append(m)
        return m

    # --- Readings ---------------------------------------------------------------------
    batches = metering_ops.batches_since(now - HOUR)
    metric("edge_batches_last_hour", "Reading batches accepted from gateways in the last hour").add(
        batches["batches"]
    )
    metric("readings_accepted_last_hour", "Readings stored in the last hour (edge API)").add(
        batches["accepted"]
    )
    metric("readings_duplicate_last_hour", "Readings received again in the last hour").add(
        batches["duplicates"]
    )
    metric("readings_flagged_last_hour", "Readings stored but flagged by validation").add(
        batches["flagged"]
    )
    rejected = metering_ops.rejected_since(now - HOUR)
    m = metric("readings_rejected_last_hour", "Readings quarantined in the last hour, by reason")
    for reason, n in rejected.items():
        m.add(n, reason=reason)
    metric("readings_quarantine_open", "Quarantined readings not yet resolved").add(
        metering_ops.quarantine_open()
    )
    delays = metering_ops.ingest_delays(now - HOUR)
    m = metric(
        "ingest_latency_seconds",
        "Seconds from a reading's interval end to its storage (last hour, sampled meters)",
        "summary",
    )
    for q in (0.5, 0.95, 0.99):
        m.add(quantile(delays, q), quantile=str(q))
    metric("ingest_latency_seconds_max", "Longest delay from interval end to storage").add(
        delays[-1] if delays else 0
    )
    metric("ingest_latency_samples", "Readings in the latency sample").add(len(delays))

    # --- Celery -----------------------------------------------------------------------
    depth = queue_depth()
    metric("celery_broker_up", "1 when the Celery broker answers").add(0 if depth is None else 1)
    if depth is not None:
        metric("celery_queue_depth", "Tasks waiting in the Celery queue").add(depth, queue=QUEUE)
    failures = metric("celery_task_failures_last_hour", "Celery tasks that failed, by task")
    failed = TaskFailure.objects.filter(at__gte=now - HOUR).order_by().values_list("task")
    failed_counts: dict[str, int] = {}
    for (task,) in failed:
        failed_counts[task] = failed_counts.get(task, 0) + 1
    for task, n in sorted(failed_counts.items()):
        failures.add(n, task=task)
    kept, oldest = outbox.pending()
    metric("outbox_waiting", "Tasks kept in the outbox: the broker has not taken them").add(kept)
    metric("outbox_oldest_seconds", "Age of the oldest task in the outbox").add(
        max((now - oldest).total_seconds(), 0) if oldest else 0
    )
    beat = beat_schedules(now)
    age = metric("beat_last_run_age_seconds", "Seconds since beat last ran each schedule")
    every = metric("beat_interval_seconds", "How often each schedule should run")
    for row in beat:
        if row["age"] is not None:
            age.add(row["age"], schedule=row["name"])
        if row["every"] is not None:
            every.add(row["every"], schedule=row["name"])
    overdue = sum(1 for row in beat if row["overdue"])
    metric("beat_overdue_schedules", "Schedules beat has not run in time").add(overdue)

    # --- Gateways, messages, SMS credit, billing ----------------------------------------
    gateways = metering_ops.gateways_by_state(now)
    m = metric("gateways", "Gateways by state (offline: three heartbeats missed)")
    for state, n in gateways.items():
        m.add(n, state=state)
    messages = messaging_ops.messages_by_status(now - DAY)
    m = metric("messages_last_day", "Messages created in the last day, by status")
    for status, n in messages.items():
        m.add(n, status=status)
    metric("messages_failed_last_day", "Messages that failed in the last day").add(
        messages.get("failed", 0)
    )
    waiting = messaging_ops.oldest_waiting(now)
    metric("messages_oldest_waiting_seconds", "Age of the oldest message waiting to go").add(
        waiting
    )
    balance = ProviderBalance.objects.filter(provider=messaging_ops.sms_provider()).first()
    if balance is not None and balance.amount is not None:
        metric("sms_balance", "SMS provider credit (provider's currency)").add(
            balance.amount, provider=balance.provider, currency=balance.currency
        )
    if balance is not None:
        metric("sms_balance_checked_age_seconds", "Seconds since the credit was last read").add(
            (now - balance.checked_at).total_seconds(), provider=balance.provider
        )
        metric("sms_balance_check_ok", "1 when the last credit check succeeded").add(
            0 if balance.error else 1, provider=balance.provider
        )
    runs = billing_ops.billing_runs_by_status()
    m = metric("billing_runs", "Billing runs by status")
    for status, n in runs.items():
        m.add(n, status=status)
    stuck = billing_ops.billing_runs_stuck(before=now - RUN_STUCK_AFTER)
    metric("billing_runs_stuck", "Billing runs working with no progress for 2 hours").add(stuck)
    failed_runs = billing_ops.billing_runs_failed(since=now - 7 * DAY)
    metric("billing_runs_failed_last_week", "Billing runs that failed in the last week").add(
        failed_runs
    )

    # --- Checks -----------------------------------------------------------------------
    offline_names = metering_ops.offline_gateway_names(now) if gateways["offline"] else []
    values = {
        "readings_rejected_per_hour": sum(rejected.values()),
        "ingest_latency_p95_seconds": quantile(delays, 0.95) if delays else None,
        "celery_queue_depth": depth,
        "celery_task_failures_per_hour": sum(failed_counts.values()),
        "beat_overdue_schedules": overdue,
        "gateways_offline": gateways["offline"],
        "messages_failed_per_day": messages.get("failed", 0),
        "messages_waiting_seconds": waiting,
        "sms_balance": float(balance.amount) if balance and balance.amount is not None else None,
        "billing_runs_stuck": stuck,
        "billing_runs_failed": failed_runs,
    }
    details = {
        "celery_queue_depth": "" if depth is not None else "the broker does not answer",
        "beat_overdue_schedules": ", ".join(r["name"] for r in beat if r["overdue"]),
        "gateways_offline": ", ".join(offline_names[:10]),
        "celery_task_failures_per_hour": ", ".join(sorted(failed_counts)),
        "sms_balance": (
            f"{balance.provider} {balance.currency}; {balance.error}".strip("; ")
            if balance
            else "not checked yet"
        ),
    }
    checks = []
    for limit in THRESHOLDS:
        value = values[limit.key]
        check = Check(
            limit.key,
            limit.title,
            value,
            limits[limit.key],
            limit.kind,
            limit.unit,
            details.get(limit.key, ""),
        )
        checks.append(check)
    # A broker that does not answer is a failure of its own, whatever the threshold.
    checks.append(
        Check(
            "celery_broker",
            "Celery broker answers",
            1 if depth is not None else 0,
            Decimal(1),
            "min",
            "",
            details["celery_queue_depth"],
        )
    )
    metric("check_failing", "1 for each operations check that fails its threshold")
    for check in checks:
        metrics[-1].add(0 if check.ok else 1, check=check.key)
    return Report(
        at=now,
        metrics=metrics,
        checks=checks,
        beat=beat,
        offline_gateways=offline_names,
        balance=balance,
    )


def configured_token() -> str:
    return getattr(settings, "METRICS_TOKEN", "") or ""
