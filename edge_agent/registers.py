"""CHINT register maps as data, and planning them into as few requests as possible.

Every address here comes from ../shared/reference/chint_register_maps.md. Nobody has
the manufacturer's manual, so a map is data that a commissioning probe confirms,
never a constant buried in the poller: a new firmware means a new entry here.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

#: Most registers one Modbus read may ask for (the protocol's limit).
MAX_REGISTERS_PER_READ = 125

#: Where a DTSU666 firmware may keep total import energy -> its export register, where
#: documented (the drivers reading 0x4000 name no export register).
DTSU666_ENERGY_CANDIDATES: dict[int, int | None] = {0x4000: None, 0x101E: 0x1028,
                                                    0x401E: 0x4028}

#: Physically impossible values: a decoding or wiring fault, never a reading.
IMPOSSIBLE_PHASE_V = 300.0
IMPOSSIBLE_LINE_V = 520.0
FREQUENCY_RANGE_HZ = (40.0, 70.0)


@dataclass(frozen=True)
class Register:
    """One float32 value (two registers, high word first) and how to read it."""

    field: str  # the contract's field name, e.g. "voltage_v"
    address: int
    scale: float  # multiply the float by this to get the contract's unit
    unit: str
    kind: str = "instant"  # instant: every sweep; energy: at the log interval; probe: probe only
    phase: int | None = None  # position in a per-phase list field

    @property
    def end(self) -> int:
        """First register address after this value."""
        return self.address + 2


@dataclass(frozen=True)
class RegisterMap:
    """A model/variant's registers, function code, readable spans and address register."""

    model: str
    variant: str
    function_code: int
    registers: tuple[Register, ...]
    #: [start, end) ranges the meter answers in one request; reads never cross them.
    spans: tuple[tuple[int, int], ...]
    address_register: int
    #: Whether a new Modbus address only takes effect after a power cycle.
    address_needs_power_cycle: bool
    phases: int = 1
    energy_register: int | None = None

    def by_kind(self, *kinds: str) -> list[Register]:
        """Registers of the given kinds, by address."""
        return sorted((r for r in self.registers if r.kind in kinds), key=lambda r: r.address)


@dataclass(frozen=True)
class Block:
    """One read request: a contiguous run of registers within one span."""

    function_code: int
    start: int
    count: int
    registers: tuple[Register, ...] = field(default=())

    @property
    def response_bytes(self) -> int:
        """Bytes of an RTU response to this request."""
        return 5 + 2 * self.count


def _ddsu666() -> RegisterMap:
    return RegisterMap(
        model="DDSU666",
        variant="standard",
        function_code=3,
        registers=(
            Register("voltage_v", 0x2000, 1.0, "V", phase=0),
            Register("current_a", 0x2002, 1.0, "A", phase=0),
            Register("power_kw", 0x2004, 1.0, "kW"),
            Register("power_factor", 0x200A, 1.0, ""),
            Register("frequency_hz", 0x200E, 1.0, "Hz"),
            Register("energy_kwh", 0x4000, 1.0, "kWh", kind="energy"),
            Register("export_kwh", 0x400A, 1.0, "kWh", kind="energy"),
        ),
        spans=((0x2000, 0x2010), (0x4000, 0x400C)),
        address_register=0x0006,
        address_needs_power_cycle=True,
        energy_register=0x4000,
    )


def _dtsu666(energy_register: int) -> RegisterMap:
    export = DTSU666_ENERGY_CANDIDATES[energy_register]
    phase_regs = [
        Register(name, base + 2 * i, scale, unit, phase=i)
        for name, base, scale, unit in (
            ("voltage_v", 0x2006, 0.1, "V"),
            ("current_a", 0x200C, 0.001, "A"),
        )
        for i in range(3)
    ]
    line_regs = [
        Register("voltage_ll_v", 0x2000 + 2 * i, 0.1, "V", kind="probe", phase=i) for i in range(3)
    ]
    variant = "standard" if energy_register == 0x4000 else f"energy@0x{energy_register:04X}"
    return RegisterMap(
        model="DTSU666",
        variant=variant,
        function_code=4,
        registers=(
            *line_regs,
            *phase_regs,
            Register("power_kw", 0x2012, 0.0001, "kW"),  # the float is in 0.1 W
            Register("power_factor", 0x202A, 0.001, ""),
            Register("frequency_hz", 0x2044, 0.01, "Hz"),
            Register("energy_kwh", energy_register, 1.0, "kWh", kind="energy"),
            *([Register("export_kwh", export, 1.0, "kWh", kind="energy")] if export else []),
        ),
        spans=(
            (0x2000, 0x2022),
            (0x202A, 0x2032),
            (0x2044, 0x2046),
            (energy_register, energy_register + 2),
            *([(export, export + 2)] if export else []),
        ),
        address_register=0x002E,
        address_needs_power_cycle=False,
        phases=3,
        energy_register=energy_register,
    )


MODELS = ("DDSU666", "DTSU666")


def parse_register(value: str | int | None) -> int | None:
    """Read a register address written as int, "0x4000" or "16384"."""
    if value is None or isinstance(value, int):
        return value
    return int(str(value), 0)


def register_map(model: str, variant: str | None = None, energy_register=None) -> RegisterMap:
    """The map for a model, a variant name and/or the register that holds energy."""
    model = model.upper()
    if model == "DDSU666":
        return _ddsu666()
    if model != "DTSU666":
        raise ValueError(f"unknown meter model {model!r} (known: {', '.join(MODELS)})")
    reg = parse_register(energy_register)
    if reg is None and variant and variant.startswith("energy@"):
        reg = parse_register(variant.split("@", 1)[1])
    reg = 0x4000 if reg is None else reg
    if reg not in DTSU666_ENERGY_CANDIDATES:
        known = ", ".join(f"0x{r:04X}" for r in DTSU666_ENERGY_CANDIDATES)
        raise ValueError(f"DTSU666 energy register 0x{reg:04X} is not one of {known}")
    return _dtsu666(reg)


def all_maps() -> list[RegisterMap]:
    """Every known model/variant."""
    return [_ddsu666(), *(_dtsu666(r) for r in DTSU666_ENERGY_CANDIDATES)]


def plan_blocks(rmap: RegisterMap, registers: list[Register]) -> list[Block]:
    """Group registers into the fewest reads: one per contiguous run inside a readable span."""
    blocks: list[Block] = []
    current: list[Register] = []
    current_span = None
    for reg in sorted(registers, key=lambda r: r.address):
        span = _span_of(rmap, reg)
        fits = (
            current
            and span == current_span
            and reg.end - current[0].address <= MAX_REGISTERS_PER_READ
        )
        if current and not fits:
            blocks.append(_block(rmap, current))
            current = []
        current.append(reg)
        current_span = span
    if current:
        blocks.append(_block(rmap, current))
    return blocks


def _span_of(rmap: RegisterMap, reg: Register) -> tuple[int, int]:
    for start, end in rmap.spans:
        if start <= reg.address and reg.end <= end:
            return (start, end)
    return (reg.address, reg.end)


def _block(rmap: RegisterMap, regs: list[Register]) -> Block:
    start = regs[0].address
    return Block(rmap.function_code, start, max(r.end for r in regs) - start, tuple(regs))


def decode_float(words: list[int], offset: int) -> float:
    """IEEE-754 float32 from two registers, high word first."""
    return struct.unpack(">f", struct.pack(">HH", words[offset], words[offset + 1]))[0]


def encode_float(value: float) -> list[int]:
    """Two registers, high word first, holding a float32."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def decode_block(block: Block, words: list[int]) -> dict[str, float]:
    """Raw scaled values of a block, keyed by field and phase ("voltage_v.1")."""
    out: dict[str, float] = {}
    for reg in block.registers:
        value = decode_float(words, reg.address - block.start) * reg.scale
        key = reg.field if reg.phase is None else f"{reg.field}.{reg.phase}"
        out[key] = value
    return out


def impossible(key: str, value: float) -> bool:
    """Whether a decoded value cannot be physical (NaN, inf, or past the reference limits)."""
    if not math.isfinite(value):
        return True
    name = key.split(".", 1)[0]
    if name == "voltage_v":
        return value < 0 or value > IMPOSSIBLE_PHASE_V
    if name == "voltage_ll_v":
        return value < 0 or value > IMPOSSIBLE_LINE_V
    if name == "frequency_hz":
        return not FREQUENCY_RANGE_HZ[0] <= value <= FREQUENCY_RANGE_HZ[1]
    if name == "power_factor":
        return abs(value) > 1.0
    if name in ("energy_kwh", "export_kwh"):
        return value < 0
    return False


def to_reading_fields(values: dict[str, float], rmap: RegisterMap, ct_ratio: float = 1.0) -> dict:
    """Contract fields (lists per phase) from decoded values; CT ratio applied to A, kW, kWh."""
    factor = {"current_a": ct_ratio, "power_kw": ct_ratio, "energy_kwh": ct_ratio,
              "export_kwh": ct_ratio}
    out: dict = {}
    for key, value in values.items():
        name, _, phase = key.partition(".")
        value = round(value * factor.get(name, 1.0), 4)
        if phase:
            out.setdefault(name, [None] * rmap.phases)[int(phase)] = value
        else:
            out[name] = value
    return {k: v for k, v in out.items() if not (isinstance(v, list) and None in v)}

