"""Gateway tokens: shown once, stored hashed, rotated with a grace period, revoked at once."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from metering.models import Gateway, GatewayToken

ROTATION_GRACE = timedelta(days=7)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def token_issue(*, gateway: Gateway, now: datetime | None = None) -> str:
    """A new token for ``gateway``; the caller shows it once, we keep only its hash."""
    token = f"mcg_{secrets.token_urlsafe(32)}"
    record = GatewayToken.objects.create(
        gateway=gateway,
        token_hash=_hash(token),
        prefix=token[:8],
        created_at=clock.resolve(now),
        created_by=audit.current_actor().user,
    )
    audit.record(
        AuditEvent.Action.CREATE,
        record,
        after={"gateway": gateway.name, "prefix": record.prefix},
        site=gateway.site_id,
        note="token issued",
    )
    return token


@transaction.atomic
def token_rotate(
    *, gateway: Gateway, grace: timedelta = ROTATION_GRACE, now: datetime | None = None
) -> str:
    """Issue a new token; the current ones keep working for ``grace`` (a Pi's backlog)."""
    at = clock.resolve(now)
    current = GatewayToken.objects.filter(gateway=gateway, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=at + grace)
    )
    current.update(expires_at=at + grace)
    return token_issue(gateway=gateway, now=at)


@transaction.atomic
def token_revoke(*, gateway: Gateway, now: datetime | None = None) -> int:
    """End every token of ``gateway`` at once (a stolen Pi); returns how many."""
    at = clock.resolve(now)
    count = GatewayToken.objects.filter(gateway=gateway, revoked_at__isnull=True).update(
        revoked_at=at
    )
    audit.record(
        AuditEvent.Action.UPDATE,
        gateway,
        after={"tokens_revoked": count},
        site=gateway.site_id,
        note="tokens revoked",
    )
    return count


def gateway_for_token(token: str, *, now: datetime | None = None) -> Gateway | None:
    """The gateway a presented token belongs to, if the token is still valid."""
    at = clock.resolve(now)
    record = (
        GatewayToken.objects.select_related("gateway__site")
        .filter(token_hash=_hash(token), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at))
        .first()
    )
    if record is None:
        return None
    # Bounded writes: note use at most once a minute.
    if record.last_used_at is None or at - record.last_used_at > timedelta(minutes=1):
        GatewayToken.objects.filter(pk=record.pk).update(last_used_at=at)
    return record.gateway
