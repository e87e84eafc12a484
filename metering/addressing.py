"""Modbus address rules.

Meters leave the factory at address 1, so 1 is never planned. Each site plans
single-phase and three-phase meters in their own ranges (defaults 10–99 and
100–247, a site setting). An address is planned once per site, when the meter is
Assigned and before anyone knows its bus, and must also be unique on each bus.
A bus carries at most its gateway's meter limit.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from mcoms.core.models import Site
from metering.lifecycle import HOLDS_ADDRESS
from metering.models import Gateway, Meter


def address_problems(
    *,
    site: Site,
    phases: int,
    address: int | None,
    gateway: Gateway | None = None,
    meter_pk: int | None = None,
) -> list[str]:
    """Every reason ``address`` cannot be used for this meter (empty when it can)."""
    if address is None:
        return ["Choose a Modbus address."]
    if address == 1:
        return ["Address 1 is the factory default and is never planned."]
    allowed = site.address_range(phases)
    kind = "three-phase" if phases == 3 else "single-phase"
    problems = []
    if address not in allowed:
        problems.append(
            f"{address} is outside {site.name}'s {kind} range {allowed.start}–{allowed.stop - 1}."
        )
    holders = Meter.objects.filter(status__in=HOLDS_ADDRESS, modbus_address=address).exclude(
        pk=meter_pk
    )
    taken = holders.filter(site=site).first()
    if taken:
        problems.append(f"{address} is already planned on {site.name} for meter {taken.serial}.")
    if gateway is not None:
        on_bus = holders.filter(gateway=gateway).exclude(site=site).first()
        if on_bus:
            problems.append(f"{address} is already used on bus {gateway.name} by {on_bus.serial}.")
    return problems


def check_address(**kwargs) -> None:
    """Raise ValidationError listing every problem with the address."""
    problems = address_problems(**kwargs)
    if problems:
        raise ValidationError({"modbus_address": problems})


def check_bus_room(gateway: Gateway, *, meter_pk: int | None = None) -> None:
    """Refuse one more meter on a bus that already carries its limit."""
    count = gateway.meters.filter(status__in=HOLDS_ADDRESS).exclude(pk=meter_pk).count()
    if count >= gateway.meter_limit:
        limit = gateway.meter_limit
        raise ValidationError(
            {"gateway": f"Bus {gateway.name} already has {count} meters (limit {limit})."}
        )


def free_addresses(site: Site, phases: int) -> list[int]:
    """Addresses of the site's range not yet planned, lowest first."""
    used = set(
        Meter.objects.filter(site=site, status__in=HOLDS_ADDRESS).values_list(
            "modbus_address", flat=True
        )
    )
    return [a for a in site.address_range(phases) if a != 1 and a not in used]
