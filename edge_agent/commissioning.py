"""Bus work for commissioning: read one meter, scan, probe a model, change an address.

The command line and the platform's remote commands both call these, so a person
gets the same answers on site and from the commissioning screens.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .bus import Bus
from .modbus import ModbusError
from .registers import (
    DTSU666_ENERGY_CANDIDATES,
    decode_block,
    decode_float,
    impossible,
    plan_blocks,
    register_map,
    to_reading_fields,
)

NOMINAL_PHASE_V = (207.0, 253.0)
PLAUSIBLE_PHASE_V = (150.0, 300.0)
PLAUSIBLE_LINE_V = (260.0, 520.0)
PLAUSIBLE_HZ = (45.0, 65.0)


class CommissioningError(Exception):
    """A bus operation that cannot (or must not) be done; the message says why."""


def read_meter(bus: Bus, address: int, model: str = "DDSU666", energy_register=None) -> dict:
    """Every value of one meter, in the contract's fields and units, plus units and problems."""
    rmap = register_map(model, energy_register=energy_register)
    raw: dict[str, float] = {}
    for block in plan_blocks(rmap, rmap.by_kind("instant", "energy")):
        try:
            raw.update(decode_block(block, bus.read_registers(address, block.function_code,
                                                              block.start, block.count)))
        except ModbusError as exc:
            raise CommissioningError(f"address {address}: {exc.kind}: {exc}") from exc
    bad = sorted(k for k, v in raw.items() if impossible(k, v))
    fields = to_reading_fields({k: v for k, v in raw.items() if k not in bad}, rmap)
    units = {r.field: r.unit for r in rmap.registers}
    return {"address": address, "model": rmap.model, "variant": rmap.variant,
            "values": fields, "units": {k: units[k] for k in fields},
            "impossible": {k: _jsonable(raw[k]) for k in bad}}


def _jsonable(value: float):
    return value if math.isfinite(value) else str(value)


def answers(bus: Bus, address: int) -> ModbusError | bool:
    """True if a meter answers at ``address`` (an exception reply counts), the error if garbled.

    One function code is enough: a silent address is silent to all of them.
    """
    _, error = bus.probe_silently(address, 3, 0x2000, 2)
    if error is None or error.kind == "exception":
        return True
    return error if error.kind == "crc" else False


def scan(bus: Bus, first: int = 1, last: int = 247,
         progress: Callable[[int, bool], None] | None = None) -> list[dict]:
    """Addresses that answer, each with a model guess and its voltage (for discoveries)."""
    found = []
    for address in range(first, last + 1):
        state = answers(bus, address)
        if progress:
            progress(address, state is not False)
        if state is False:
            continue
        item = {"address": address, "model_guess": None, "voltage_v": None, "serial": None}
        try:
            guess = probe(bus, address)
            item.update(model_guess=guess["model"], voltage_v=guess["voltage_v"])
            if not guess["model"]:
                item["note"] = "; ".join(guess["notes"])
        except CommissioningError as exc:
            item["note"] = str(exc)  # something answers, but nothing a map can make sense of
        found.append(item)
    return found


def _block(bus: Bus, address: int):
    """The 16 registers at 0x2000 that both models answer, with the function code that worked."""
    last = None
    for fc in (3, 4):
        words, error = bus.probe_silently(address, fc, 0x2000, 16)
        if words is not None:
            return fc, words
        last = error
    raise CommissioningError(f"address {address}: {last.kind}: {last}")


def _within(value: float, band: tuple[float, float]) -> bool:
    return math.isfinite(value) and band[0] <= value <= band[1]


def probe(bus: Bus, address: int) -> dict:
    """Which register map fits the meter at ``address``, judged by plausible values."""
    fc, words = _block(bus, address)
    v = decode_float(words, 0)
    result = {"address": address, "function_code": fc, "model": None, "variant": None,
              "energy_register": None, "voltage_v": None, "frequency_hz": None, "notes": []}
    if _within(v, PLAUSIBLE_PHASE_V) and _within(decode_float(words, 0x0E), PLAUSIBLE_HZ):
        result.update(model="DDSU666", variant="standard", energy_register="0x4000",
                      voltage_v=round(v, 1), frequency_hz=round(decode_float(words, 0x0E), 2))
        energy, error = bus.probe_silently(address, fc, 0x4000, 2)
        result["energy_kwh"] = None if energy is None else round(decode_float(energy, 0), 3)
        if error:
            result["notes"].append(f"energy at 0x4000: {error}")
    elif (hz := _dtsu_fits(bus, address, fc, words)) is not None:
        result.update(model="DTSU666", voltage_v=round(decode_float(words, 6) * 0.1, 1),
                      frequency_hz=round(hz, 2))
        result["notes"].append("values are floats in 0.1 V / 0.001 A / 0.01 Hz: DTSU666 scaling")
        _dtsu_energy(bus, address, fc, result)
    else:
        result["notes"].append(f"no known register map fits (0x2000 reads {v!r})")
        return result
    nominal = _within(result["voltage_v"], NOMINAL_PHASE_V)
    result["notes"].append(f"voltage {result['voltage_v']} V is "
                           f"{'within' if nominal else 'outside'} the nominal 207-253 V band")
    return result


def _dtsu_fits(bus: Bus, address: int, fc: int, words: list[int]) -> float | None:
    """The frequency if the DTSU666 map and its scaling fit, else None."""
    if not (_within(decode_float(words, 6) * 0.1, PLAUSIBLE_PHASE_V)
            and _within(decode_float(words, 0) * 0.1, PLAUSIBLE_LINE_V)):
        return None
    freq, _ = bus.probe_silently(address, fc, 0x2044, 2)
    hz = None if freq is None else decode_float(freq, 0) * 0.01
    return hz if hz is not None and _within(hz, PLAUSIBLE_HZ) else None


def _dtsu_energy(bus: Bus, address: int, fc: int, result: dict) -> None:
    candidates = {}
    for reg in DTSU666_ENERGY_CANDIDATES:
        words, error = bus.probe_silently(address, fc, reg, 2)
        value = None if words is None else decode_float(words, 0)
        sane = value is not None and math.isfinite(value) and value >= 0
        candidates[f"0x{reg:04X}"] = round(value, 3) if sane else (
            f"{error.kind}: {error}" if error else f"not sane: {value!r}")
    result["energy_candidates"] = candidates
    sane = [k for k, v in candidates.items() if isinstance(v, float)]
    if not sane:
        result["notes"].append("no candidate energy register holds a sane value")
        return
    chosen = "0x4000" if "0x4000" in sane else sane[0]
    result["energy_register"] = chosen
    result["energy_kwh"] = candidates[chosen]
    result["variant"] = register_map("DTSU666", energy_register=chosen).variant
    if len(sane) > 1:
        result["notes"].append(f"several registers hold sane energy ({', '.join(sane)}); "
                               f"using {chosen}")


def set_address(bus: Bus, model: str, old: int, new: int) -> dict:
    """Give the meter at ``old`` the address ``new`` (refusing where that would be unsafe)."""
    for name, value in (("from", old), ("to", new)):
        if not 1 <= value <= 247:
            raise CommissioningError(f"--{name} {value}: Modbus addresses are 1-247")
    if old == new:
        raise CommissioningError("the old and new addresses are the same")
    rmap = register_map(model)
    if answers(bus, new) is not False:
        raise CommissioningError(f"address {new} already answers: refusing to make two "
                                 "meters share it")
    state = answers(bus, old)
    if state is False:
        raise CommissioningError(f"nothing answers at address {old}")
    if isinstance(state, ModbusError) or _garbled(bus, old, rmap.function_code):
        raise CommissioningError(f"answers at address {old} are garbled: more than one meter "
                                 "seems to answer there; disconnect all but one and retry")
    try:
        bus.write_register(old, rmap.address_register, new)
    except ModbusError as exc:
        raise CommissioningError(f"writing the address register failed: {exc}") from exc
    if rmap.address_needs_power_cycle:
        return {"status": "power_cycle_needed", "model": rmap.model, "from": old, "to": new,
                "message": f"{rmap.model} takes the new address after a power cycle: switch it "
                           f"off and on, then run set-address ... --verify"}
    return verify_address(bus, model, old, new)


def _garbled(bus: Bus, address: int, fc: int) -> bool:
    for _ in range(3):
        _, error = bus.probe_silently(address, fc, 0x2000, 2)
        if error is not None and error.kind == "crc":
            return True
    return False


def verify_address(bus: Bus, model: str, old: int, new: int) -> dict:
    """Check that the meter now answers at ``new`` and no longer at ``old``."""
    rmap = register_map(model)
    blocks = plan_blocks(rmap, rmap.by_kind("instant"))
    words, error = bus.probe_silently(new, rmap.function_code, blocks[0].start, blocks[0].count)
    if words is None:
        raise CommissioningError(f"nothing answers at the new address {new} ({error})")
    still_old = answers(bus, old) is not False
    return {"status": "verified", "model": rmap.model, "from": old, "to": new,
            "message": f"the meter answers at {new}" + (
                f"; something still answers at {old}" if still_old else "")}
