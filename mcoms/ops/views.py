"""The operations page (admins): every figure of ``/metrics`` with its threshold, red or green.

``/ops/`` shows the checks (value, limit, state, detail), the schedules beat runs with
when each last ran, the gateways offline, SMS credit, billing runs and the alerts that
are firing; ``/ops/thresholds/`` lets an admin change a limit (audited).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from mcoms.ops import figures
from mcoms.ops.metrics import is_admin
from mcoms.ops.models import OpsAlert, Threshold


def _admin(request) -> None:
    if not is_admin(request.user):
        raise PermissionDenied("The operations page is for admins.")


@login_required
def home(request):
    _admin(request)
    report = figures.collect()
    alerts = OpsAlert.objects.filter(firing=True)
    return render(
        request,
        "ops/home.html",
        {
            "report": report,
            "checks": report.checks,
            "failing": report.failing,
            "alerts": alerts,
            "runs": report.metric("mcoms_billing_runs").samples,
            "messages_last_day": report.metric("mcoms_messages_last_day").samples,
            "limits": figures.THRESHOLDS,
            "values": figures.thresholds(),
        },
    )


@login_required
@require_POST
def thresholds(request):
    _admin(request)
    current = figures.thresholds()
    changed, errors = [], []
    for limit in figures.THRESHOLDS:
        text = (request.POST.get(limit.key) or "").strip()
        if text == "":
            continue
        try:
            value = Decimal(text)
        except InvalidOperation:
            errors.append(f"{limit.title}: {text!r} is not a number")
            continue
        if not value.is_finite() or value < 0 or value >= Decimal("1e12"):
            errors.append(f"{limit.title}: give a number from 0 up")
            continue
        value = value.quantize(Decimal("0.01"))
        if value == current[limit.key]:
            continue
        row = Threshold.objects.filter(key=limit.key).first()
        before = audit.snapshot(row) if row else None
        row = row or Threshold(key=limit.key)
        row.value, row.updated_at, row.updated_by = value, clock.now(), request.user
        row.save()
        audit.record(
            AuditEvent.Action.UPDATE if before else AuditEvent.Action.CREATE,
            row,
            before=before,
            after=audit.snapshot(row),
            note=f"operations threshold {limit.key}: {current[limit.key]} -> {value}",
        )
        changed.append(limit.title)
    for error in errors:
        messages.error(request, error)
    if changed:
        messages.success(request, "Changed: " + ", ".join(changed) + ".")
    elif not errors:
        messages.info(request, "Nothing changed.")
    return redirect("ops:home")
