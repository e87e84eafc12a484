"""Opening, refreshing and clearing plant alerts, and telling the site's staff.

Metering's ``Alert`` has no kind for losses or plant conditions (a new kind would be a
migration of metering's), so the plant keeps its own ``PlantAlert``: one open per site
and kind (a partial unique constraint). A condition that persists moves the open
alert's ``last_seen_at`` and refreshes its details; a condition that cleared resolves
it (audited, as the check). Newly opened alerts are told, after commit, to the site's
managers and field supervisors through ``metering.watch.tell_staff`` (SMS, else email),
with the ``plant_alert`` template (created when missing).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction

from mcoms.core import audit
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent, Site
from mcoms.core.roles import Role
from mcoms.core.selectors import staff_of_site
from metering.plant import services
from metering.plant.models import PlantAlert
from metering.watch import tell_staff
from notifications.models import Channel, Language, MessageTemplate

log = logging.getLogger(__name__)

TEMPLATE = "plant_alert"
STAFF = {Role.SITE_MANAGER, Role.FIELD_SUPERVISOR}
TEMPLATES = (
    (Channel.SMS, "", "MCOMS {{ site }}: {{ kind }}. {{ message }}"),
    (
        Channel.EMAIL,
        "{{ site }}: {{ kind }}",
        "{{ kind }} at {{ site }}.\n\n{{ message }}\n\nSee the site's technical page in MCOMS.",
    ),
)


def ensure_templates() -> list[str]:
    """Create the English ``plant_alert`` templates when missing; returns those created."""
    created = []
    for channel, subject, body in TEMPLATES:
        _, new = MessageTemplate.objects.get_or_create(
            key=TEMPLATE,
            language=Language.ENGLISH,
            channel=channel,
            defaults={"subject": subject, "body": body},
        )
        if new:
            created.append(f"{TEMPLATE} ({channel})")
    return created


def raise_alert(
    site: Site, kind: str, message: str, details: dict, *, now: dt.datetime
) -> tuple[PlantAlert, bool]:
    """Open the alert, or refresh the open one; returns (alert, newly opened)."""
    current = PlantAlert.objects.filter(site=site, kind=kind, status=PlantAlert.Status.OPEN).first()
    if current is not None:
        current.last_seen_at = now
        current.message = message[:300]
        current.details = details
        current.save(update_fields=["last_seen_at", "message", "details"])
        return current, False
    try:
        with transaction.atomic():
            alert = PlantAlert.objects.create(
                site=site,
                kind=kind,
                message=message[:300],
                details=details,
                opened_at=now,
                last_seen_at=now,
            )
    except IntegrityError:  # opened by a check running at the same time
        return PlantAlert.objects.get(site=site, kind=kind, status=PlantAlert.Status.OPEN), False
    audit.record(AuditEvent.Action.CREATE, alert, after=audit.snapshot(alert), site=site)
    transaction.on_commit(lambda: tell(alert))
    return alert, True


def clear(site: Site, kind: str, *, now: dt.datetime, note: str) -> PlantAlert | None:
    """Resolve the open alert of this kind, if any (its condition is gone)."""
    current = PlantAlert.objects.filter(site=site, kind=kind, status=PlantAlert.Status.OPEN).first()
    if current is None:
        return None
    with acting_as(label="plant checks"):
        return services.alert_resolve(alert=current, by=None, note=note, now=now)


def tell(alert: PlantAlert) -> int:
    """Message the site's managers and field supervisors; never raises."""
    sent = 0
    try:
        ensure_templates()
        staff = list(staff_of_site(alert.site, STAFF))
    except Exception:
        log.exception("could not tell anyone of plant alert %s", alert.pk)
        return 0
    context = {
        "site": alert.site.name,
        "kind": alert.get_kind_display(),
        "message": alert.message,
    }
    for user in staff:
        sent += tell_staff(user, TEMPLATE, context, f"plant.alert:{alert.pk}", alert.site)
    return sent
