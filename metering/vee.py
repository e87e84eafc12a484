"""Validation of incoming readings (the V of VEE), as pure rules with a reason each.

Validity is not power quality: 190 V in the evening is a real reading of a weak
supply (valid, and a power-quality event elsewhere); 2,309 V from a single-phase
meter is a decoding error (flagged). Limits of the impossible come from the CHINT
reference: phase voltage above ~300 V, frequency outside 40–70 Hz, |power factor|
above 1, negative energy.

A flagged reading is stored, kept out of billing, and listed for a person to
accept (see ``metering.services``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

MAX_PHASE_VOLTAGE = 300.0
FREQUENCY_RANGE = (40.0, 70.0)
FUTURE_TOLERANCE = timedelta(minutes=5)
# Without a package's load limit: what one phase of a direct meter can carry (100 A at 253 V).
PHASE_LIMIT_KW = 25.3
# Meters and clocks are not exact: allow this much above the load limit before flagging.
JUMP_MARGIN = 1.25
JUMP_SLACK_KWH = Decimal("0.05")


@dataclass(frozen=True)
class Previous:
    """The meter's last billable reading before the one being checked."""

    ts: datetime
    energy_kwh: Decimal


def impossible_values(values: dict) -> list[str]:
    """Reasons the values cannot be physical (decoding or wiring faults)."""
    reasons = []
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            reasons.append(f"{key} is not a number")
    volts = [v for v in (values.get(f"voltage_l{n}") for n in (1, 2, 3)) if v is not None]
    if any(math.isfinite(v) and (v > MAX_PHASE_VOLTAGE or v < 0) for v in volts):
        reasons.append(f"impossible voltage {max(volts):g} V (limit {MAX_PHASE_VOLTAGE:g} V)")
    freq = values.get("frequency_hz")
    if (
        freq is not None
        and math.isfinite(freq)
        and not (FREQUENCY_RANGE[0] <= freq <= FREQUENCY_RANGE[1])
    ):
        reasons.append(f"impossible frequency {freq:g} Hz")
    pf = values.get("power_factor")
    if pf is not None and math.isfinite(pf) and abs(pf) > 1:
        reasons.append(f"impossible power factor {pf:g}")
    energy = values.get("energy_kwh")
    if energy is not None and energy < 0:
        reasons.append(f"negative energy {energy} kWh")
    return reasons


def load_limit_kw(*, package_limit_w: int | None, phases: int, ct_ratio: Decimal) -> Decimal:
    """The most power the meter can honestly see: the package's limit, else the wiring's."""
    if package_limit_w:
        return Decimal(package_limit_w) / 1000
    return Decimal(str(PHASE_LIMIT_KW)) * phases * ct_ratio


def check(
    *,
    ts: datetime,
    values: dict,
    previous: Previous | None,
    installed_at: datetime | None,
    limit_kw: Decimal,
    now: datetime,
) -> list[str]:
    """Every reason this reading should be flagged; empty when it is valid."""
    reasons = impossible_values(values)
    if ts > now + FUTURE_TOLERANCE:
        reasons.append(f"timestamp {ts:%Y-%m-%d %H:%M}Z is in the future")
    if installed_at is not None and ts < installed_at:
        reasons.append(f"timestamp before installation ({installed_at:%Y-%m-%d %H:%M}Z)")
    energy = values.get("energy_kwh")
    if previous is not None and energy is not None and energy >= 0:
        delta = energy - previous.energy_kwh
        if delta < 0:
            reasons.append(f"energy went backwards from {previous.energy_kwh} to {energy} kWh")
        elif ts > previous.ts:
            hours = Decimal((ts - previous.ts).total_seconds()) / 3600
            allowed = limit_kw * hours * Decimal(str(JUMP_MARGIN)) + JUMP_SLACK_KWH
            if delta > allowed:
                reasons.append(
                    f"jump of {delta} kWh in {hours:.2f} h exceeds the load limit ({limit_kw} kW)"
                )
    return reasons
