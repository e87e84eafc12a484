"""Sweeps of the bus: every meter's instantaneous block, energy where it is due.

A silent meter costs one short timeout per sweep at most, and is then skipped for
a growing number of sweeps, so one bad meter never delays the others beyond that.
Errors are counted by kind (timeout, crc, exception, implausible) for the heartbeat;
impossible values never leave the agent.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from .bus import Bus
from .clock import Clock, iso
from .config import MeterConfig
from .modbus import ModbusError, PortError, char_time_s, transaction_time_s
from .registers import Block, RegisterMap, decode_block, impossible, plan_blocks, to_reading_fields

log = logging.getLogger(__name__)

ERROR_KINDS = ("timeout", "crc", "exception", "implausible")
MAX_SKIP_SWEEPS = 30
DAY_S = 86400.0


@dataclass
class MeterState:
    """What the poller knows about one meter between sweeps."""

    meter: MeterConfig
    rmap: RegisterMap
    instant: list[Block]
    energy: list[Block]
    failures: int = 0
    skip: int = 0
    ok: bool | None = None
    last_ok_at: datetime | None = None
    last_error: str | None = None
    errors: deque = field(default_factory=deque)  # (monotonic time, kind)

    def count(self, now: float) -> dict[str, int]:
        """Errors by kind over the last 24 hours."""
        while self.errors and self.errors[0][0] < now - DAY_S:
            self.errors.popleft()
        counts = dict.fromkeys(ERROR_KINDS, 0)
        for _, kind in self.errors:
            counts[kind] += 1
        return counts


@dataclass
class SweepResult:
    """One sweep: values per meter and which meters had their energy read."""

    started_at: datetime
    values: dict[int, dict] = field(default_factory=dict)
    energy_read: set[int] = field(default_factory=set)
    duration_s: float = 0.0
    bus_time_s: float = 0.0  # modelled time on the wire at the line's baud rate
    port_open: bool = True


class Poller:
    """Runs sweeps over the configured meters on one bus."""

    def __init__(self, bus: Bus, meters, clock: Clock, budget_s: float = 9.0,
                 latency_s: float = 0.02):
        self.bus = bus
        self.clock = clock
        self.budget_s = budget_s
        self.latency_s = latency_s
        self.states: dict[int, MeterState] = {}
        self._cursor = 0
        self.set_meters(meters)

    def set_meters(self, meters) -> None:
        """Poll these meters from the next sweep on, keeping the history of known ones."""
        old = self.states
        self.states = {}
        for meter in meters:
            if not meter.enabled:
                continue
            rmap = meter.register_map()
            state = MeterState(meter, rmap, plan_blocks(rmap, rmap.by_kind("instant")),
                               plan_blocks(rmap, rmap.by_kind("energy")))
            if meter.address in old and old[meter.address].meter == meter:
                state = old[meter.address]
            self.states[meter.address] = state

    def _cost(self, block: Block) -> float:
        s = self.bus.settings
        return transaction_time_s(8, block.response_bytes,
                                  char_time_s(s.baudrate, s.bytesize, s.parity, s.stopbits),
                                  self.latency_s)

    def sweep(self, energy_due: list[int] = ()) -> SweepResult:
        """Read the meters once, within the sweep's bus-time budget.

        Meters owing an interval reading come first and have their energy read with
        their instantaneous values; the rest follow for bus health. A meter that does
        not fit is left for the next sweep (owed ones keep their boundary ``ts``), and
        at least one meter is read per sweep, so a bus too slow for its budget still
        gets every reading through, only later.
        """
        result = SweepResult(started_at=self.clock.now())
        start = self.clock.monotonic()
        result.port_open = self.bus.ensure_open()
        if result.port_open:
            try:
                self._sweep(result, [a for a in energy_due if a in self.states], start)
            except PortError:
                result.port_open = False
        result.duration_s = self.clock.monotonic() - start
        return result

    def _sweep(self, result: SweepResult, due: list[int], start: float) -> None:
        owed = set(due)
        others = [a for a in self.states if a not in owed]
        # Start where the last sweep ran out of budget, so that no meter is always last.
        self._cursor %= max(len(others), 1)
        others = others[self._cursor:] + others[:self._cursor]
        left_out = None
        for position, address in enumerate(due + others):
            state = self.states[address]
            if state.skip > 0:
                state.skip -= 1
                continue
            blocks = state.instant + (state.energy if address in owed else [])
            elapsed = max(result.bus_time_s, self.clock.monotonic() - start)
            if result.values and elapsed + sum(map(self._cost, blocks)) > self.budget_s:
                if address not in owed and left_out is None:
                    left_out = position - len(due)
                continue
            values = self._read(state, blocks, result)
            if values is None:
                continue
            result.values[address] = values
            if address in owed and "energy_kwh" in values:
                result.energy_read.add(address)
        self._cursor = (self._cursor + left_out) if left_out is not None else 0

    def _read(self, state: MeterState, blocks: list[Block], result: SweepResult) -> dict | None:
        raw: dict[str, float] = {}
        now = self.clock.monotonic()
        for block in blocks:
            try:
                words = self.bus.read_registers(state.meter.address, block.function_code,
                                                block.start, block.count)
            except ModbusError as exc:
                result.bus_time_s += (self.bus.settings.timeout_s if exc.kind == "timeout"
                                      else self._cost(block))
                self._failed(state, exc.kind, str(exc), now)
                return None
            result.bus_time_s += self._cost(block)
            raw.update(decode_block(block, words))
        bad = sorted(k for k, v in raw.items() if impossible(k, v))
        if bad:
            self._error(state, "implausible", f"impossible values: {', '.join(bad)}", now)
            raw = {k: v for k, v in raw.items() if k not in bad}
        state.failures = 0
        state.ok = True
        state.last_ok_at = result.started_at
        return to_reading_fields(raw, state.rmap, state.meter.ct_ratio)

    def _failed(self, state: MeterState, kind: str, message: str, now: float) -> None:
        self._error(state, kind, message, now)
        state.ok = False
        if kind == "timeout":
            state.failures += 1
            state.skip = min(2 ** min(state.failures - 1, 5), MAX_SKIP_SWEEPS)

    def _error(self, state: MeterState, kind: str, message: str, now: float) -> None:
        state.errors.append((now, kind))
        if state.last_error != kind:
            log.warning("meter %d: %s", state.meter.address, message)
        state.last_error = kind

    def meter_report(self) -> list[dict]:
        """The heartbeat's ``meters`` list."""
        now = self.clock.monotonic()
        return [{"address": a, "ok": bool(s.ok), "last_ok_at": iso(s.last_ok_at),
                 "errors_24h": s.count(now), "last_error": s.last_error}
                for a, s in sorted(self.states.items())]
