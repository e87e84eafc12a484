"""Tools each app uses to answer a subject access request and to anonymise a customer.

Each app lists, and erases, its own tables (``<app>/personal_data.py``); these helpers do
the generic part: turning rows into JSON-ready data, and replacing a person's names and
numbers wherever free text mentions them. See docs/personal-data.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from django.contrib.auth.hashers import make_password
from django.db import models
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from mcoms.core import audit
from mcoms.core.models import AuditEvent, User

REMOVED = "[removed]"
_COUNTRY_CODES = ("256", "254", "234")  # Uganda, Kenya, Nigeria: the sites' countries


def rows(queryset: QuerySet, *, exclude: Sequence[str] = ()) -> list[dict]:
    """Every concrete field of every row (foreign keys as ids), ready for JSON."""
    names = [f.attname for f in queryset.model._meta.concrete_fields if f.name not in exclude]
    return [
        {k: _plain(audit._jsonable(v)) for k, v in row.items()}
        for row in queryset.order_by("pk").values(*names)
    ]


def _plain(value: object) -> object:
    if isinstance(value, dict | list | str | int | float | bool) or value is None:
        return value
    return str(value)


def phone_forms(phone: str) -> list[str]:
    """The ways a stored E.164 number is written: +256772…, 256772…, 0772…, 772…."""
    phone = (phone or "").strip()
    if not phone:
        return []
    digits = phone.lstrip("+")
    forms = [phone, digits]
    for code in _COUNTRY_CODES:
        if digits.startswith(code) and len(digits) > len(code) + 6:
            national = digits[len(code) :]
            forms += ["0" + national, national]
    return list(dict.fromkeys(forms))


def pattern(needles: Iterable[str]) -> re.Pattern | None:
    """One case-insensitive pattern for all the strings (longest first), or None."""
    words = sorted({n.strip() for n in needles if n and len(n.strip()) >= 3}, key=len, reverse=True)
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


def scrub_value(value: object, found: re.Pattern, replacement: str) -> object:
    """``value`` with every match replaced, inside text and JSON structures alike."""
    if isinstance(value, str):
        return found.sub(replacement, value)
    if isinstance(value, dict):
        return {k: scrub_value(v, found, replacement) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v, found, replacement) for v in value]
    return value


def scrub(
    queryset: QuerySet, fields: Sequence[str], needles: Iterable[str], replacement: str = REMOVED
) -> int:
    """Replace the strings wherever these text or JSON fields of the rows mention them.

    Only rows that mention one are read and written (an update per row changed, without
    ``save()``). Returns the number of rows changed.
    """
    needles = [n for n in needles if n and len(n.strip()) >= 3]
    found = pattern(needles)
    if found is None or not fields:
        return 0
    model = queryset.model
    condition = Q()
    for name in fields:
        lookup = name
        if isinstance(model._meta.get_field(name), models.JSONField):
            lookup = f"_text_{name}"
            queryset = queryset.annotate(**{lookup: Cast(name, TextField())})
        for needle in needles:
            condition |= Q(**{f"{lookup}__icontains": needle.strip()})
    changed = 0
    for row in queryset.filter(condition).values("pk", *fields):
        new = {k: scrub_value(row[k], found, replacement) for k in fields}
        new = {k: v for k, v in new.items() if v != row[k]}
        if new:
            changed += model.objects.filter(pk=row["pk"]).update(**new)
    return changed


def forget_audit_fields(instance: models.Model, fields: Iterable[str], replacement: str) -> int:
    """Blank these fields in every audit snapshot of ``instance``, keeping that it changed.

    A value that was set becomes ``replacement``; one that was empty stays empty, so the
    trail still shows which fields changed and when. The record's label is replaced too.
    """
    fields = set(fields)
    events = AuditEvent.objects.filter(
        object_type=instance._meta.label_lower, object_id=audit.object_key(instance)
    )
    changed = 0
    for event in events.only("pk", "before", "after"):
        before, after = _blank(event.before, fields), _blank(event.after, fields)
        changed += AuditEvent.objects.filter(pk=event.pk).update(
            before=before, after=after, object_repr=str(instance)[:200]
        )
    return changed


def _blank(snapshot: dict | None, fields: set[str]) -> dict | None:
    if not snapshot:
        return snapshot
    return {k: (REMOVED if k in fields and v not in (None, "") else v) for k, v in snapshot.items()}


def scrub_audit(
    needles: Iterable[str], replacement: str = REMOVED, *, of: models.Model | None = None
) -> int:
    """Replace the strings in audit events' labels, notes and before/after snapshots:
    those of the record ``of``, or every event."""
    events = AuditEvent.objects.all()
    if of is not None:
        events = events.filter(object_type=of._meta.label_lower, object_id=audit.object_key(of))
    return scrub(events, ["object_repr", "note", "before", "after"], needles, replacement)


def scrub_audit_of(records: QuerySet, needles: Iterable[str], replacement: str = REMOVED) -> int:
    """Replace the strings in the audit events of these records (of one model)."""
    keys = [str(pk) for pk in records.values_list("pk", flat=True)]
    if not keys:
        return 0
    events = AuditEvent.objects.filter(
        object_type=records.model._meta.label_lower, object_id__in=keys
    )
    return scrub(events, ["object_repr", "note", "before", "after"], needles, replacement)


def user_anonymise(*, user: User, label: str) -> User:
    """Make a customer's portal login anonymous and unusable (staff logins are not touched)."""
    user.username = f"anonymised-{user.pk}"
    user.first_name = label[:150]
    user.last_name = ""
    user.email = ""
    user.phone = ""
    user.is_active = False
    user.password = make_password(None)
    user.save(
        update_fields=["username", "first_name", "last_name", "email", "phone"]
        + ["is_active", "password"]
    )
    return user
