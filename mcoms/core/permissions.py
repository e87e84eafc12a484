"""The one check pages make before acting: the role's capability, and the site's scope."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from mcoms.core.models import User
from mcoms.core.selectors import can_on_site


def require(user: User, capability: str, site_id: int | None = None) -> None:
    """Raise PermissionDenied unless ``user``'s role carries ``capability``.

    With ``site_id``, the site must also be in the user's scope.
    """
    allowed = user.can(capability) if site_id is None else can_on_site(user, capability, site_id)
    if not allowed:
        raise PermissionDenied
