"""Tariff changes under maker-checker: one person proposes, another approves; all audited.

A proposed version never prices anything. Approval puts it in force from its
``effective_from`` and closes the version before it on that day. Approved versions
are never edited: a correction is a new version.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from billing.models import Tariff, TariffVersion
from billing.tariff_terms import TariffError, parse_terms
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, User
from mcoms.core.roles import Cap

# Billing officers and head-office admins hold this; a dedicated capability can replace it.
TARIFF_CAPABILITY = Cap.PACKAGES_MANAGE


def _require(user: User) -> None:
    if not user.can(TARIFF_CAPABILITY):
        raise PermissionDenied(f"{user} may not change tariffs.")


@transaction.atomic
def tariff_create(
    *, code: str, name: str, currency: str, by: User, description: str = ""
) -> Tariff:
    """A new tariff with no terms yet (nothing is charged until a version is approved)."""
    _require(by)
    tariff = Tariff(code=code, name=name, currency=currency, description=description)
    tariff.full_clean()
    tariff.save()
    audit.record(AuditEvent.Action.CREATE, tariff, after=audit.snapshot(tariff))
    return tariff


@transaction.atomic
def tariff_version_propose(
    *, tariff: Tariff, effective_from: dt.date, terms: dict, reason: str, by: User
) -> TariffVersion:
    """Propose new terms from ``effective_from``; they apply only after someone else approves."""
    _require(by)
    try:
        parse_terms(terms)
    except TariffError as exc:
        raise ValidationError({"terms": str(exc)}) from exc
    validate_effective_from(tariff=tariff, effective_from=effective_from)
    version = TariffVersion(
        tariff=tariff,
        effective_from=effective_from,
        terms=terms,
        reason=reason,
        proposed_by=by,
        proposed_at=clock.now(),
    )
    version.full_clean()
    version.save()
    audit.record(
        AuditEvent.Action.CREATE, version, after=audit.snapshot(version), note="tariff proposed"
    )
    return version


@transaction.atomic
def tariff_version_approve(*, version: TariffVersion, by: User, note: str = "") -> TariffVersion:
    """Put a proposed version in force; the approver must not be the proposer."""
    _require(by)
    Tariff.objects.select_for_update().get(pk=version.tariff_id)  # one approval at a time
    version = TariffVersion.objects.select_for_update().get(pk=version.pk)
    _check_proposed(version)
    if version.proposed_by_id == by.pk:
        raise PermissionDenied("A tariff change needs a second person: you proposed this one.")
    previous = validate_effective_from(tariff=version.tariff, effective_from=version.effective_from)
    if previous is not None:
        before = audit.snapshot(previous, ["effective_to"])
        previous.effective_to = version.effective_from
        previous.save(update_fields=["effective_to"])
        audit.record_changes(previous, before, note=f"superseded by version {version.pk}")
    return _decide(version, TariffVersion.Status.APPROVED, by, note)


@transaction.atomic
def tariff_version_reject(*, version: TariffVersion, by: User, note: str) -> TariffVersion:
    """Turn a proposal down (or withdraw one's own), saying why."""
    _require(by)
    version = TariffVersion.objects.select_for_update().get(pk=version.pk)
    _check_proposed(version)
    if not note.strip():
        raise ValidationError({"note": "Say why the change is rejected."})
    return _decide(version, TariffVersion.Status.REJECTED, by, note)


def _decide(version: TariffVersion, status: str, by: User, note: str) -> TariffVersion:
    fields = ["status", "decided_by", "decided_at", "decision_note"]
    before = audit.snapshot(version, fields)
    version.status = status
    version.decided_by = by
    version.decided_at = clock.now()
    version.decision_note = note
    version.save(update_fields=fields)
    after = audit.snapshot(version, fields)
    audit.record(
        AuditEvent.Action.TRANSITION, version, before=before, after=after, note=f"tariff {status}"
    )
    return version


def _check_proposed(version: TariffVersion) -> None:
    if version.status != TariffVersion.Status.PROPOSED:
        raise ValidationError(f"This version is already {version.get_status_display().lower()}.")


def validate_effective_from(*, tariff: Tariff, effective_from: dt.date) -> TariffVersion | None:
    """The latest approved version; raise unless ``effective_from`` comes after its start."""
    latest = (
        tariff.versions.filter(status=TariffVersion.Status.APPROVED)
        .order_by("-effective_from")
        .first()
    )
    if latest is not None and effective_from <= latest.effective_from:
        raise ValidationError(
            {
                "effective_from": (
                    f"An approved version starts on {latest.effective_from}; "
                    "a change must start after it."
                )
            }
        )
    return latest
