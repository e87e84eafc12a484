"""A simulated RS485 bus of CHINT meters, served by pymodbus over RTU framing.

Each meter answers at the addresses, function codes (03 and 04, as the real meters
do), float order and scaling of its register map in registers.py, with slowly
varying plausible values and rising energy. Faults can be switched on per meter
(silent, CRC garbage, exception replies, NaN, impossible values) so that tests and
the benchmark exercise the same paths a real bus does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from .registers import DTSU666_ENERGY_CANDIDATES, encode_float, register_map

# pymodbus logs every unanswered address of a scan as an error; a bus is expected to have gaps.
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

FAULTS = ("silent", "crc", "exception", "nan", "impossible")


#: Mean phase voltage × mean power factor of the simulated supply, in kV.
_KV_PF = 0.231 * 0.95
#: Above what one simulated phase ever draws (kW): lets a restarted bus continue upward.
MAX_PHASE_KW = 0.8
#: Wall-clock origin of the simulated registers, so they keep rising across restarts.
EPOCH = 1767225600.0  # 2026-01-01T00:00:00Z


def _energy_used(t: float, s: float, *, phases: int) -> float:
    """kWh drawn in the first ``t`` seconds: the integral of the simulated load.

    Each phase draws 2 + 1.5·sin²(t/37 + 2s + k) A, i.e. 2.75 − 0.75·cos(2t/37 + c) A,
    whose integral is closed-form; it never decreases, as a real register never does.
    """
    total = 0.0
    for k in range(phases):
        c = 4 * s + 2 * k
        total += 2.75 * t - 13.875 * (math.sin(2 * t / 37 + c) - math.sin(c))
    return _KV_PF * total / 3600 + t * 1e-4


def wall_clock_energy(address: int, phases: int) -> float:
    """A starting register that is above anything an earlier run of the bus reached."""
    return 1000.0 + 37.5 * address + MAX_PHASE_KW * phases * (time.time() - EPOCH) / 3600


@dataclass
class SimMeter:
    """One simulated meter: its state and how it misbehaves, if it does."""

    address: int
    model: str
    #: DTSU666 energy registers that hold energy; None = every candidate.
    energy_registers: tuple[int, ...] | None = None
    fault: str | None = None
    seed: float = 0.0
    energy0: float = 1000.0
    pending_address: int | None = None
    started: float = field(default_factory=time.monotonic)

    def values(self, now: float) -> dict[int, float]:
        """Register address -> float as the meter holds it (in the meter's own scale)."""
        t = now - self.started
        s = self.seed
        volts = [231.0 + 3.0 * math.sin(t / 50 + s + k) for k in range(3)]
        amps = [2.0 + 1.5 * math.sin(t / 37 + s * 2 + k) ** 2 for k in range(3)]
        pf = 0.95 + 0.04 * math.sin(t / 70 + s)
        hz = 50.0 + 0.05 * math.sin(t / 20 + s)
        if self.model == "DDSU666":
            kw = volts[0] * amps[0] * pf / 1000
            energy = self.energy0 + _energy_used(t, s, phases=1)
            regs = {
                0x2000: volts[0],
                0x2002: amps[0],
                0x2004: kw,
                0x2006: kw * 0.3,
                0x2008: volts[0] * amps[0] / 1000,
                0x200A: pf,
                0x200E: hz,
                0x4000: energy,
                0x400A: energy * 0.01,
            }
            if self.fault == "impossible":
                regs[0x2000] = volts[0] * 10
            return regs
        kw = sum(v * a for v, a in zip(volts, amps, strict=True)) * pf / 1000
        energy = self.energy0 + _energy_used(t, s, phases=3)
        regs = {}
        for k in range(3):
            regs[0x2000 + 2 * k] = volts[k] * math.sqrt(3) * 10  # line-to-line, 0.1 V
            regs[0x2006 + 2 * k] = volts[k] * 10
            regs[0x200C + 2 * k] = amps[k] * 1000
            regs[0x2014 + 2 * k] = volts[k] * amps[k] * pf * 10
            regs[0x202C + 2 * k] = pf * 1000
        regs.update({0x2012: kw * 10000, 0x202A: pf * 1000, 0x2044: hz * 100})
        for reg, export in DTSU666_ENERGY_CANDIDATES.items():
            if self.energy_registers is None or reg in self.energy_registers:
                regs[reg] = energy
                if export:
                    regs[export] = energy * 0.01
        if self.fault == "impossible":
            regs[0x2006] = volts[0] * 100  # read without its x0.1 scale
        return regs


def _simdata(meter: SimMeter) -> list[SimData]:
    """Valid register ranges of a meter; everything between answers 'illegal address'."""
    ranges = list(register_map(meter.model).spans)
    if meter.model == "DDSU666":
        ranges.append((0x0006, 0x0007))
    else:
        ranges = [r for r in ranges if 0x2000 <= r[0] < 0x3000]  # energy: as served
        ranges.append((0x002C, 0x002F))
        served = meter.energy_registers or tuple(DTSU666_ENERGY_CANDIDATES)
        for reg in served:
            export = DTSU666_ENERGY_CANDIDATES[reg]
            ranges += [(reg, reg + 2)] + ([(export, export + 2)] if export else [])
    merged: list[list[int]] = []
    for start, end in sorted(set(ranges)):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [SimData(s, count=e - s, values=0, datatype=DataType.REGISTERS) for s, e in merged]


class SimBus:
    """The meters on one simulated bus, and the pymodbus server answering for them."""

    def __init__(
        self, meters: list[SimMeter], power_cycle_after_s: float | None = None, clock=time.monotonic
    ):
        self.meters = {m.address: m for m in meters}
        self.clock = clock  # tests freeze it to compare exact values
        self.server = None
        #: Seconds after which a meter needing a power cycle "gets" one (None: only when asked).
        self.power_cycle_after_s = power_cycle_after_s

    def _devices(self) -> list[SimDevice]:
        devices = []
        for meter in self.meters.values():
            devices.append(
                SimDevice(meter.address, simdata=_simdata(meter), action=self._action_for(meter))
            )
        return devices

    def _action_for(self, meter: SimMeter):
        async def action(fc, start, address, count, registers, set_values):
            if meter.fault == "exception":
                return ExcCodes.DEVICE_FAILURE
            if set_values is not None:
                return self._written(meter, address, set_values)
            for reg, value in meter.values(self.clock()).items():
                if meter.fault == "nan":
                    value = float("nan")
                offset = reg - start
                if 0 <= offset < len(registers) - 1:
                    registers[offset : offset + 2] = encode_float(value)
            return None

        return action

    def _written(self, meter: SimMeter, address: int, values) -> ExcCodes | None:
        rmap = register_map(meter.model)
        if address != rmap.address_register:
            return None
        new = int(values[0])
        if not 1 <= new <= 247:
            return ExcCodes.ILLEGAL_VALUE
        meter.pending_address = new
        loop = asyncio.get_running_loop()
        if not rmap.address_needs_power_cycle:
            # The answer still goes out from the old address: pymodbus copies it from the request.
            loop.call_soon(self._move, meter)
        elif self.power_cycle_after_s is not None:
            loop.call_later(self.power_cycle_after_s, self._move, meter)
        return None

    def _move(self, meter: SimMeter) -> None:
        new, meter.pending_address = meter.pending_address, None
        if new is None or new == meter.address:
            return
        # pymodbus 3.16 (pinned) keeps a server's devices in SimCore.devices, keyed by id;
        # moving the entry is what a real meter does when it takes a new address.
        core = self.server.context
        core.devices[new] = core.devices.pop(meter.address)
        del self.meters[meter.address]
        meter.address = new
        self.meters[new] = meter

    def power_cycle(self) -> None:
        """Switch every meter off and on: pending address changes take effect."""
        for meter in list(self.meters.values()):
            self._move(meter)

    def _trace(self, sending: bool, packet: bytes) -> bytes:
        if not sending or not packet:
            return packet
        meter = self.meters.get(packet[0])
        if meter is None or meter.fault == "silent":
            return b""  # a missing meter says nothing at all
        if meter.fault == "crc":
            return packet[:-2] + bytes([packet[-2] ^ 0xFF, packet[-1]])
        return packet

    async def serve(self, listen: str, ready: threading.Event | None = None, **serial) -> None:
        """Serve until cancelled, on ``socket://host:port`` or a serial device/pty."""
        common = {
            "framer": FramerType.RTU,
            "ignore_missing_devices": True,
            "trace_packet": self._trace,
        }
        if listen.startswith("socket://"):
            host, _, port = listen[len("socket://") :].rpartition(":")
            self.server = ModbusTcpServer(self._devices(), address=(host, int(port)), **common)
        else:
            self.server = ModbusSerialServer(
                self._devices(),
                port=listen,
                baudrate=serial.get("baudrate", 9600),
                stopbits=serial.get("stopbits", 2),
                **common,
            )
        await self.server.serve_forever(background=True)
        if ready:
            ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            await self.server.shutdown()


class SimulatorThread:
    """A SimBus served from a background thread (tests, the benchmark, demos)."""

    def __init__(self, bus: SimBus, listen: str):
        self.bus = bus
        self.listen = listen
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._task = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self.bus.serve(self.listen, self._ready))
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)

    def start(self) -> SimulatorThread:
        """Start serving and return once the port listens."""
        self._ready = threading.Event()
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError(f"simulator did not start on {self.listen}")
        return self

    def call(self, fn, *args):
        """Run ``fn`` in the simulator's loop (meter changes must not race a request)."""
        done = threading.Event()

        def run():
            fn(*args)
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(2)

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._task:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(5)


def parse_meters(spec: str, variant: str | None = None) -> list[SimMeter]:
    """Meters from "10:DDSU666,11:DDSU666,100:DTSU666" (an optional ":fault" after each)."""
    energy = None
    if variant and variant != "all":
        reg = register_map("DTSU666", variant=variant, energy_register=_maybe_reg(variant))
        energy = (reg.energy_register,)
    meters = []
    for i, item in enumerate(filter(None, (p.strip() for p in spec.split(",")))):
        parts = item.split(":")
        address, model = int(parts[0]), parts[1].upper() if len(parts) > 1 else "DDSU666"
        fault = parts[2] if len(parts) > 2 else None
        if fault and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (known: {', '.join(FAULTS)})")
        register_map(model)
        meters.append(
            SimMeter(
                address,
                model,
                energy if model == "DTSU666" else None,
                fault,
                seed=i * 0.7,
                energy0=wall_clock_energy(address, 3 if model == "DTSU666" else 1),
            )
        )
    return meters


def _maybe_reg(variant: str):
    try:
        return int(variant, 0)
    except ValueError:
        return None
