"""The meter inventory lifecycle, as data.

Unassigned → Assigned (address chosen) → Converted (switched to Modbus, address
written, lab-tested) → Shipped → Installed (wired to the bus) → Commissioned
(polled and logging). A meter may need a retest, be replaced, or be
decommissioned. Each step is dated and signed (see ``MeterEvent``).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models


class Status(models.TextChoices):
    UNASSIGNED = "unassigned", "Unassigned"
    ASSIGNED = "assigned", "Assigned"
    CONVERTED = "converted", "Converted"
    SHIPPED = "shipped", "Shipped"
    INSTALLED = "installed", "Installed"
    COMMISSIONED = "commissioned", "Commissioned"
    RETEST_NEEDED = "retest_needed", "Retest needed"
    REPLACED = "replaced", "Replaced"
    DECOMMISSIONED = "decommissioned", "Decommissioned"


S = Status
TRANSITIONS: dict[str, frozenset[str]] = {
    S.UNASSIGNED: frozenset({S.ASSIGNED, S.DECOMMISSIONED}),
    S.ASSIGNED: frozenset({S.CONVERTED, S.UNASSIGNED, S.DECOMMISSIONED}),
    S.CONVERTED: frozenset({S.SHIPPED, S.RETEST_NEEDED, S.DECOMMISSIONED}),
    S.SHIPPED: frozenset({S.INSTALLED, S.RETEST_NEEDED, S.DECOMMISSIONED}),
    S.INSTALLED: frozenset({S.COMMISSIONED, S.RETEST_NEEDED, S.REPLACED, S.DECOMMISSIONED}),
    S.COMMISSIONED: frozenset({S.RETEST_NEEDED, S.REPLACED, S.DECOMMISSIONED}),
    S.RETEST_NEEDED: frozenset({S.CONVERTED, S.DECOMMISSIONED}),
    S.REPLACED: frozenset({S.DECOMMISSIONED}),
    S.DECOMMISSIONED: frozenset(),
}

# The order of the normal path, for imports that jump several steps at once.
FORWARD_PATH = [S.UNASSIGNED, S.ASSIGNED, S.CONVERTED, S.SHIPPED, S.INSTALLED, S.COMMISSIONED]

# Statuses that hold an address on the site's plan and on the bus.
HOLDS_ADDRESS = frozenset(
    {S.ASSIGNED, S.CONVERTED, S.SHIPPED, S.INSTALLED, S.COMMISSIONED, S.RETEST_NEEDED}
)
# Statuses in which the meter is (or should be) wired to a gateway's bus.
ON_BUS = frozenset({S.INSTALLED, S.COMMISSIONED})

OVERDUE_AFTER: dict[str, timedelta] = {
    S.ASSIGNED: timedelta(days=7),
    S.INSTALLED: timedelta(days=2),
}


def can_move(current: str, target: str) -> bool:
    """True when the lifecycle allows going from ``current`` to ``target`` in one step."""
    return target in TRANSITIONS.get(current, frozenset())


def forward_steps(current: str, target: str) -> list[str] | None:
    """The steps along the normal path from ``current`` to ``target``, or None if not ahead."""
    if current not in FORWARD_PATH or target not in FORWARD_PATH:
        return None
    start, end = FORWARD_PATH.index(current), FORWARD_PATH.index(target)
    if end < start:
        return None
    return FORWARD_PATH[start + 1 : end + 1]
