"""The audit trail: every change to customers, meters, money, tariffs and roles.

Who acted and through which channel is carried in a context variable: the web
middleware sets it for each request (``web``, ``api``, ``admin``), background
tasks and commands set it with :func:`acting_as`. Services call :func:`record`
with before/after snapshots taken by :func:`snapshot`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import decimal
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import models

from mcoms.core import clock
from mcoms.core.models import AuditEvent, Site, User


@dataclass(frozen=True)
class Actor:
    user: User | None
    label: str
    channel: str


_SYSTEM = Actor(user=None, label="system", channel=AuditEvent.Channel.SYSTEM)
_current: contextvars.ContextVar[Actor] = contextvars.ContextVar("mcoms_actor", default=_SYSTEM)


def current_actor() -> Actor:
    """The person or task on whose behalf the current code runs."""
    return _current.get()


@contextlib.contextmanager
def acting_as(
    user: User | None = None, *, label: str | None = None, channel: str = AuditEvent.Channel.TASK
) -> Iterator[Actor]:
    """Attribute every change inside the block to ``user`` (or a task ``label``)."""
    actor = Actor(
        user=user, label=label or (user.get_username() if user else "system"), channel=channel
    )
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def _jsonable(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def snapshot(instance: models.Model, fields: Iterable[str] | None = None) -> dict:
    """The instance's concrete field values as JSON-ready data (foreign keys as ids)."""
    names = fields or [f.name for f in instance._meta.concrete_fields]
    data = {}
    for name in names:
        field = instance._meta.get_field(name)
        value = getattr(instance, field.attname)
        data[name] = _jsonable(value)
    return data


def object_key(instance: models.Model) -> str:
    """The record's key as text; a composite key is its parts joined by ``:``."""
    pk = instance.pk
    if isinstance(pk, tuple):
        return ":".join(str(_jsonable(part)) for part in pk)
    return str(pk)


def record(
    action: str,
    instance: models.Model,
    *,
    before: dict | None = None,
    after: dict | None = None,
    site: Site | int | None = None,
    note: str = "",
) -> AuditEvent:
    """Write one audit event for ``instance`` attributed to the current actor."""
    actor = current_actor()
    site_id = site.pk if isinstance(site, Site) else site
    return AuditEvent.objects.create(
        at=clock.now(),
        actor=actor.user if actor.user is not None and actor.user.pk else None,
        actor_label=actor.label[:150],
        channel=actor.channel,
        action=action,
        object_type=instance._meta.label_lower,
        object_id=object_key(instance),
        object_repr=str(instance)[:200],
        site_id=site_id,
        before=before,
        after=after,
        note=note[:300],
    )


def record_changes(instance: models.Model, before: dict, **kwargs) -> AuditEvent | None:
    """Record an update when the snapshot after differs from ``before``; else nothing."""
    after = snapshot(instance, before.keys())
    if after == before:
        return None
    return record(AuditEvent.Action.UPDATE, instance, before=before, after=after, **kwargs)
