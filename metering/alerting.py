"""The life of an alert: opened once, told to the right people, acknowledged, resolved,
escalated when nobody acknowledges it.

- **Opening** (:func:`open_alerts`): one open alert per subject and kind (per meter,
  per gateway, or per site for site-wide alerts), kept by the database's partial
  unique constraints. An alert that is already open is not opened again: its
  ``last_seen_at`` moves instead, so staff see the condition persists.
- **Telling** (:func:`notify_staff`, :func:`notify_customers`): after the alerts are
  committed, the site's managers and field supervisors get one message per site and
  run listing what opened; the customer a meter serves hears of abnormal usage
  (``abnormal_usage``, a non-essential message: their opt-out and quiet hours apply).
  Messaging never stops a check: failures are logged.
- **Acknowledging and resolving** (:func:`acknowledge`, :func:`resolve`): by staff
  with ``meters.edit`` on the site, through the alert page; both audited. Checks
  resolve alerts whose condition has cleared (:func:`resolve_cleared`), also audited,
  as the task that did it.
- **Escalation** (:func:`escalate`): an alert still open (not acknowledged) after the
  site's ``escalate_after_minutes`` goes to the cluster managers, and after as long
  again to the regional managers. Each step is recorded on the alert (level, time,
  who was told) and in the audit trail.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, User
from mcoms.core.roles import Role
from mcoms.core.selectors import staff_of_site
from metering.models import Alert, MeterAssignment, SiteWatchSettings
from metering.watch import tell_staff
from notifications.models import Channel, Language, MessageTemplate
from notifications.services import TemplateMissing, send_message

log = logging.getLogger(__name__)

SITE_STAFF = {Role.SITE_MANAGER, Role.FIELD_SUPERVISOR}
# Who hears of an alert nobody acknowledged, level by level.
ESCALATION = {1: {Role.CLUSTER_MANAGER}, 2: {Role.REGIONAL_MANAGER}}
LEVEL_NAMES = {0: "site staff", 1: "cluster manager", 2: "regional manager"}
MAX_LEVEL = max(ESCALATION)
LISTED_IN_MESSAGE = 5

USAGE_KINDS = (
    Alert.Kind.USAGE_HIGH,
    Alert.Kind.USAGE_LOW,
    Alert.Kind.USAGE_RUN,
    Alert.Kind.POSSIBLE_BYPASS,
    Alert.Kind.NIGHT_SPIKE,
)
POWER_KINDS = (
    Alert.Kind.VOLTAGE,
    Alert.Kind.SUPPLY_LOST,
    Alert.Kind.FREQUENCY,
    Alert.Kind.POWER_FACTOR,
    Alert.Kind.PHASE_IMBALANCE,
)
# The customer hears of these (their usage went up); a suspected bypass is for staff only.
CUSTOMER_USAGE_KINDS = (Alert.Kind.USAGE_HIGH, Alert.Kind.USAGE_RUN, Alert.Kind.NIGHT_SPIKE)
CUSTOMER_TEMPLATE = "abnormal_usage"
OPENED_TEMPLATE = "alerts_opened"
ESCALATED_TEMPLATE = "alert_escalated"

# (key, channel, subject, body): English wording of the staff messages. Created when
# missing; a template a person edited is left alone.
TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    (
        OPENED_TEMPLATE,
        Channel.SMS,
        "",
        "MCOMS {{ site }}: {{ count }} new alert{{ count|pluralize }}: {{ summary }}. {{ link }}",
    ),
    (
        OPENED_TEMPLATE,
        Channel.EMAIL,
        "{{ site }}: {{ count }} new alert{{ count|pluralize }}",
        "{{ count }} new alert{{ count|pluralize }} at {{ site }}:\n\n{{ listing }}\n\n"
        "See them and acknowledge: {{ link }}",
    ),
    (
        ESCALATED_TEMPLATE,
        Channel.SMS,
        "",
        "MCOMS {{ site }}: not acknowledged for {{ hours }} h: {{ message }} {{ link }}",
    ),
    (
        ESCALATED_TEMPLATE,
        Channel.EMAIL,
        "{{ site }}: alert not acknowledged for {{ hours }} h",
        "Nobody has acknowledged this alert at {{ site }} for {{ hours }} hours; it now comes "
        "to you as {{ level }}.\n\n{{ kind }}: {{ message }}\n\n{{ link }}",
    ),
)


# --- links ----------------------------------------------------------------------------------


def public_url(path: str) -> str:
    """``path`` on the platform's public address (``MCOMS_PUBLIC_URL``), else as is."""
    base = getattr(settings, "MCOMS_PUBLIC_URL", "") or ""
    return f"{base.rstrip('/')}{path}" if base else path


def alert_path(alert: Alert) -> str:
    try:
        return reverse("metering:alert", args=[alert.pk])
    except NoReverseMatch:  # the alert pages are not mounted
        return ""


def alerts_path(site_id: int) -> str:
    try:
        return f"{reverse('metering:alerts')}?site={site_id}&status=open"
    except NoReverseMatch:
        return ""


def chart_path(meter_id: int, hour: dt.datetime) -> str:
    """The chart page of ``meter_id`` centred on ``hour`` (see ``alert_views.meter_chart``)."""
    try:
        path = reverse("metering:meter_chart", args=[meter_id])
    except NoReverseMatch:
        return ""
    return f"{path}?hour={hour.astimezone(dt.UTC):%Y-%m-%dT%H:00Z}"


# --- opening ----------------------------------------------------------------------------------


def _subject(alert: Alert) -> tuple:
    if alert.meter_id is not None:
        return ("meter", alert.kind, alert.meter_id)
    if alert.gateway_id is not None:
        return ("gateway", alert.kind, alert.gateway_id)
    return ("site", alert.kind, alert.site_id)


def _open_q(subjects: Iterable[tuple]) -> Q:
    q = Q(pk__in=[])
    by = defaultdict(set)
    for level, kind, ident in subjects:
        by[(level, kind)].add(ident)
    for (level, kind), ids in by.items():
        if level == "meter":
            q |= Q(kind=kind, meter_id__in=ids)
        elif level == "gateway":
            q |= Q(kind=kind, meter__isnull=True, gateway_id__in=ids)
        else:
            q |= Q(kind=kind, meter__isnull=True, gateway__isnull=True, site_id__in=ids)
    return q


def open_alerts(candidates: list[Alert], *, now: dt.datetime) -> list[Alert]:
    """Open the candidates that are not open yet; returns the alerts this call created.

    A candidate whose subject already has an open alert of its kind only moves that
    alert's ``last_seen_at`` (and its ``details["last"]``, the newest evidence).
    """
    if not candidates:
        return []
    unique: dict[tuple, Alert] = {}
    for alert in candidates:
        alert.opened_at = now
        alert.last_seen_at = now
        unique.setdefault(_subject(alert), alert)
    with transaction.atomic():
        existing = Alert.objects.filter(resolved_at__isnull=True).filter(_open_q(unique))
        seen = []
        for row in existing.only("pk", "kind", "meter_id", "gateway_id", "site_id", "details"):
            fresh = unique.pop(_subject(row), None)
            if fresh is not None:
                row.last_seen_at = now
                row.details = {**row.details, "last": fresh.details}
                seen.append(row)
        if seen:
            Alert.objects.bulk_update(seen, ["last_seen_at", "details"], batch_size=500)
        if not unique:
            return []
        Alert.objects.bulk_create(list(unique.values()), ignore_conflicts=True, batch_size=500)
        created = Alert.objects.filter(resolved_at__isnull=True, opened_at=now).filter(
            _open_q(unique)
        )
        return list(created.select_related("site", "meter"))


def resolve_cleared(ids: Iterable[int], *, now: dt.datetime, note: str) -> int:
    """Resolve alerts whose condition cleared (by a check); audited as the acting task."""
    alerts = list(Alert.objects.filter(pk__in=list(ids), resolved_at__isnull=True))
    for alert in alerts:
        before = audit.snapshot(alert, ["status", "resolved_at", "note"])
        alert.status = Alert.Status.RESOLVED
        alert.resolved_at = now
        alert.note = note[:300]
        alert.save(update_fields=["status", "resolved_at", "note"])
        audit.record(
            AuditEvent.Action.TRANSITION,
            alert,
            before=before,
            after=audit.snapshot(alert, ["status", "resolved_at", "note"]),
            site=alert.site_id,
            note=note,
        )
    return len(alerts)


# --- staff actions -------------------------------------------------------------------------


@transaction.atomic
def acknowledge(alert: Alert, *, user: User, note: str = "", now: dt.datetime | None = None):
    """A person has seen the alert and takes it on: escalation stops."""
    at = clock.resolve(now)
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.status != Alert.Status.OPEN:
        raise ValidationError(f"This alert is {alert.get_status_display().lower()} already.")
    fields = ["status", "acknowledged_at", "acknowledged_by", "note"]
    before = audit.snapshot(alert, fields)
    alert.status = Alert.Status.ACKNOWLEDGED
    alert.acknowledged_at = at
    alert.acknowledged_by = user
    if note:
        alert.note = note[:300]
    alert.save(update_fields=fields)
    audit.record(
        AuditEvent.Action.TRANSITION,
        alert,
        before=before,
        after=audit.snapshot(alert, fields),
        site=alert.site_id,
        note=note or "acknowledged",
    )
    return alert


@transaction.atomic
def resolve(alert: Alert, *, user: User, note: str, now: dt.datetime | None = None) -> Alert:
    """A person closes the alert, saying what they found or did."""
    at = clock.resolve(now)
    if not note.strip():
        raise ValidationError("Say what was found or done before resolving.")
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.resolved_at is not None:
        raise ValidationError("This alert is resolved already.")
    fields = ["status", "resolved_at", "resolved_by", "note", "acknowledged_at", "acknowledged_by"]
    before = audit.snapshot(alert, fields)
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = at, user
    alert.status = Alert.Status.RESOLVED
    alert.resolved_at = at
    alert.resolved_by = user
    alert.note = note.strip()[:300]
    alert.save(update_fields=fields)
    audit.record(
        AuditEvent.Action.TRANSITION,
        alert,
        before=before,
        after=audit.snapshot(alert, fields),
        site=alert.site_id,
        note=note,
    )
    return alert


# --- messages --------------------------------------------------------------------------------


def ensure_templates() -> list[str]:
    """Create the staff message templates that are missing; returns those created."""
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


def notify_staff(alerts: list[Alert]) -> int:
    """One message per person and site listing the newly opened alerts; never raises."""
    sent = 0
    by_site: dict[int, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_site[alert.site_id].append(alert)
    if not by_site:
        return 0
    try:
        ensure_templates()
    except Exception:
        log.exception("could not create the alert message templates")
    for site_alerts in by_site.values():
        site = site_alerts[0].site
        try:
            staff = list(staff_of_site(site, SITE_STAFF))
        except Exception:
            log.exception("could not find the staff of %s", site)
            continue
        kinds: dict[str, int] = defaultdict(int)
        for a in site_alerts:
            kinds[a.get_kind_display().lower()] += 1
        summary = ", ".join(f"{label} ({n})" for label, n in sorted(kinds.items()))
        listing = "\n".join(
            f"- {a.message} {public_url(alert_path(a))}" for a in site_alerts[:LISTED_IN_MESSAGE]
        )
        if len(site_alerts) > LISTED_IN_MESSAGE:
            listing += f"\n- and {len(site_alerts) - LISTED_IN_MESSAGE} more"
        link = public_url(
            alert_path(site_alerts[0]) if len(site_alerts) == 1 else alerts_path(site.pk)
        )
        context = {
            "site": site.name,
            "count": len(site_alerts),
            "summary": summary,
            "listing": listing,
            "link": link,
        }
        about = f"metering.alert:{site_alerts[0].pk}"
        for user in staff:
            sent += tell_staff(user, OPENED_TEMPLATE, context, about, site)
    return sent


def notify_customers(alerts: list[Alert], *, now: dt.datetime) -> int:
    """Tell the customer each meter serves about its newly opened abnormal-usage alert."""
    usage = {a.meter_id: a for a in alerts if a.kind in CUSTOMER_USAGE_KINDS and a.meter_id}
    if not usage:
        return 0
    served = (
        MeterAssignment.objects.filter(end__isnull=True, meter_id__in=usage)
        .exclude(customer__status="closed")
        .exclude(customer__phone="")
        .select_related("customer__site")
    )
    sent = 0
    for assignment in served:
        customer = assignment.customer
        alert = usage[assignment.meter_id]
        d = alert.details
        hour = dt.datetime.fromisoformat(d["hour"]).astimezone(customer.site.zone)
        context = {
            "name": customer.first_name,
            "account": customer.account_number,
            "usage_kwh": f"{d.get('customer_value_kwh', d['value_kwh']):.1f}",
            "usual_kwh": f"{d.get('customer_usual_kwh', d['limits']['centre']):.1f}",
            "date": f"{hour:%d %b %H:00}",
        }
        try:
            with transaction.atomic():
                send_message(
                    to=customer.phone,
                    template=CUSTOMER_TEMPLATE,
                    context=context,
                    language=customer.language,
                    about=f"metering.alert:{alert.pk}",
                    site_id=customer.site_id,
                    now=now,
                    timezone=customer.site.timezone,
                )
        except TemplateMissing:
            log.info("no %s template: customer %s not told", CUSTOMER_TEMPLATE, customer.pk)
            continue
        except Exception:
            log.exception("messaging customer %s about alert %s failed", customer.pk, alert.pk)
            continue
        sent += 1
    return sent


def announce(alerts: list[Alert], *, now: dt.datetime, customers: bool = True) -> tuple[int, int]:
    """Tell staff and customers about newly opened alerts, after the current transaction."""
    told = [0, 0]

    def go() -> None:
        try:
            told[0] = notify_staff(alerts)
        except Exception:
            log.exception("messaging staff about new alerts failed")
        if customers:
            try:
                told[1] = notify_customers(alerts, now=now)
            except Exception:
                log.exception("messaging customers about new alerts failed")

    if alerts:
        transaction.on_commit(go)
    return told[0], told[1]


# --- escalation ------------------------------------------------------------------------------


def due_for_escalation(alert: Alert, after: dt.timedelta, now: dt.datetime) -> bool:
    """Open (not acknowledged), below the top level, and waiting ``after`` since the last step."""
    if alert.status != Alert.Status.OPEN or alert.escalation_level >= MAX_LEVEL:
        return False
    since = alert.escalated_at or alert.opened_at
    return now - since >= after


def escalate(*, now: dt.datetime | None = None) -> dict:
    """Move every alert nobody acknowledged in time one level up, and tell that level."""
    at = clock.resolve(now)
    waiting = list(
        Alert.objects.filter(status=Alert.Status.OPEN, escalation_level__lt=MAX_LEVEL)
        .select_related("site__cluster")
        .order_by("opened_at")
    )
    limits = SiteWatchSettings.for_sites({a.site_id for a in waiting})
    try:
        ensure_templates()
    except Exception:
        log.exception("could not create the alert message templates")
    escalated = messages = 0
    for alert in waiting:
        after = dt.timedelta(minutes=limits[alert.site_id].escalate_after_minutes)
        if not due_for_escalation(alert, after, at):
            continue
        level = alert.escalation_level + 1
        try:
            people = list(staff_of_site(alert.site, ESCALATION[level]))
        except Exception:
            log.exception("could not find the %s of %s", LEVEL_NAMES[level], alert.site)
            people = []
        fields = ["escalation_level", "escalated_at", "details"]
        with transaction.atomic():
            locked = Alert.objects.select_for_update().filter(pk=alert.pk).first()
            if locked is None or not due_for_escalation(locked, after, at):
                continue
            before = audit.snapshot(locked, ["escalation_level", "escalated_at"])
            locked.escalation_level = level
            locked.escalated_at = at
            steps = list(locked.details.get("escalations", []))
            steps.append(
                {
                    "level": level,
                    "to": LEVEL_NAMES[level],
                    "at": at.isoformat(),
                    "told": [p.get_username() for p in people],
                }
            )
            locked.details = {**locked.details, "escalations": steps}
            locked.save(update_fields=fields)
            audit.record(
                AuditEvent.Action.UPDATE,
                locked,
                before=before,
                after=audit.snapshot(locked, ["escalation_level", "escalated_at"]),
                site=locked.site_id,
                note=f"not acknowledged: escalated to the {LEVEL_NAMES[level]}"
                + ("" if people else " (nobody in that role for this site)"),
            )
        escalated += 1
        hours = round((at - alert.opened_at).total_seconds() / 3600, 1)
        context = {
            "site": alert.site.name,
            "hours": hours,
            "level": LEVEL_NAMES[level],
            "kind": alert.get_kind_display(),
            "message": alert.message,
            "link": public_url(alert_path(alert)),
        }
        for person in people:
            messages += tell_staff(
                person, ESCALATED_TEMPLATE, context, f"metering.alert:{alert.pk}", alert.site
            )
    return {"escalated": escalated, "messages": messages}
