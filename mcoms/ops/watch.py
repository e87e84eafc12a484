"""The operations watch: tells admins when a check fails, once, and when it is fixed.

Every five minutes (``ops.watch_operations``) the checks of :mod:`mcoms.ops.figures`
are evaluated. Each check has one ``OpsAlert`` row:

- a check that starts failing is marked firing and every active admin is told (SMS to
  their phone, else email), with the value, the threshold and the detail;
- while it keeps failing nobody is told again until ``OPS_ALERT_REPEAT_HOURS`` (6 by
  default) have passed since the last message — a stopped beat or an empty SMS
  account is announced, not repeated every five minutes;
- when it passes again the row is cleared and admins are told it is back to normal.

The SMS provider's credit is read by its own task (``ops.check_sms_balance``, every
30 minutes) into ``ProviderBalance``; when SMS credit runs out the alert still goes out
by email to admins with an email address, and the SMS messages wait and retry.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction

from mcoms.core import clock
from mcoms.core.models import User
from mcoms.core.roles import Role
from mcoms.ops import figures
from mcoms.ops.models import OpsAlert, ProviderBalance, TaskFailure
from notifications import ops_queries as messaging_ops
from notifications.models import Channel, Language, MessageTemplate
from notifications.services import send_message

log = logging.getLogger(__name__)

FAILING_TEMPLATE = "ops_check_failing"
RECOVERED_TEMPLATE = "ops_check_recovered"
KEEP_FAILURES = dt.timedelta(days=30)
TEMPLATES = (
    (
        FAILING_TEMPLATE,
        Channel.SMS,
        "",
        "MCOMS operations: {{ title }} is {{ value }} (threshold {{ limit }}). {{ detail }}",
    ),
    (
        FAILING_TEMPLATE,
        Channel.EMAIL,
        "MCOMS operations: {{ title }}",
        "{{ title }} is {{ value }}; the threshold is {{ limit }}.\n\n{{ detail }}\n\n"
        "See the operations page: /ops/",
    ),
    (
        RECOVERED_TEMPLATE,
        Channel.SMS,
        "",
        "MCOMS operations: {{ title }} is back to normal ({{ value }}).",
    ),
    (
        RECOVERED_TEMPLATE,
        Channel.EMAIL,
        "MCOMS operations: {{ title }} back to normal",
        "{{ title }} is back within its threshold: {{ value }} (threshold {{ limit }}).",
    ),
)


def ensure_templates() -> None:
    for key, channel, subject, body in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            key=key,
            language=Language.ENGLISH,
            channel=channel,
            defaults={"subject": subject, "body": body},
        )


def admins() -> list[User]:
    return list(User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk"))


def _tell(users: list[User], template: str, check: figures.Check) -> int:
    limit = f"{'at least' if check.kind == 'min' else 'at most'} {check.limit.normalize():f}"
    context = {
        "title": check.title,
        "value": check.shown,
        "limit": f"{limit} {check.unit}".strip(),
        "detail": check.detail[:200],
    }
    sent = 0
    for user in users:
        address = (Channel.SMS, user.phone) if user.phone else (Channel.EMAIL, user.email)
        if not address[1]:
            continue
        try:
            with transaction.atomic():
                send_message(
                    to=address[1],
                    template=template,
                    context=context,
                    channel=address[0],
                    about=f"ops.check:{check.key}",
                )
            sent += 1
        except Exception:  # one person's bad address must not silence the rest
            log.exception("could not tell %s about %s", user, check.key)
    return sent


def run(now: dt.datetime | None = None) -> dict[str, list[str]]:
    """Evaluate every check; tell admins of new, lasting and cleared failures."""
    now = clock.resolve(now)
    repeat = dt.timedelta(hours=getattr(settings, "OPS_ALERT_REPEAT_HOURS", 6))
    report = figures.collect(now)
    ensure_templates()
    people = admins()
    done: dict[str, list[str]] = {"raised": [], "repeated": [], "cleared": []}
    for check in report.checks:
        with transaction.atomic():
            alert, _ = OpsAlert.objects.select_for_update().get_or_create(key=check.key)
            if not check.ok:
                if not alert.firing:
                    alert.firing, alert.since, alert.resolved_at = True, now, None
                    what = "raised"
                elif alert.notified_at is None or alert.notified_at <= now - repeat:
                    what = "repeated"
                else:
                    what = None
                alert.value = check.shown[:100]
                alert.message = f"{check.title}: {check.shown} ({check.detail})"[:300]
                if what:
                    _tell(people, FAILING_TEMPLATE, check)
                    alert.notified_at = now
                    done[what].append(check.key)
                alert.save()
            elif alert.firing:
                alert.firing, alert.resolved_at, alert.value = False, now, check.shown[:100]
                alert.save()
                _tell(people, RECOVERED_TEMPLATE, check)
                done["cleared"].append(check.key)
    TaskFailure.objects.filter(at__lt=now - KEEP_FAILURES).delete()
    return done


def check_sms_balance(now: dt.datetime | None = None) -> ProviderBalance | None:
    """Read the default SMS provider's credit into ``ProviderBalance`` (Africa's Talking)."""
    now = clock.resolve(now)
    provider = messaging_ops.sms_provider()
    if provider != "africastalking":
        return None  # Twilio bills a card; the console costs nothing
    row = ProviderBalance.objects.filter(provider=provider).first() or ProviderBalance(
        provider=provider
    )
    try:
        row.amount, row.currency = messaging_ops.africastalking_balance()
        row.error = ""
    except messaging_ops.BalanceError as exc:
        row.error = str(exc)[:300]  # keep the last known amount, say why it is old
    row.checked_at = now
    row.save()
    return row


def record_task_failure(*, task: str, task_id: str, exception: BaseException | None) -> None:
    """Note a failed Celery task (called from the worker's ``task_failure`` signal)."""
    try:
        TaskFailure.objects.create(
            task=task[:200],
            task_id=(task_id or "")[:64],
            exception=f"{type(exception).__name__}: {exception}"[:300] if exception else "",
            at=clock.now(),
        )
    except Exception:  # monitoring must never make a failure worse
        log.exception("could not record the failure of %s", task)
