"""Commands from heartbeat answers: bus work run between sweeps, each at most once."""

from __future__ import annotations

import logging

from .bus import Bus
from .clock import Clock, iso
from .commissioning import CommissioningError, probe, read_meter, scan, set_address
from .modbus import ModbusError, PortError
from .outbox import Outbox
from .systemd import notify

log = logging.getLogger(__name__)


def _int(args: dict, key: str, default=None) -> int:
    value = args.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommissioningError(f"argument {key!r} must be an integer, got {value!r}")
    return value


def execute(bus: Bus, command: dict, models: dict[int, str]) -> dict:
    """Run one command on the bus and return its result (raises CommissioningError)."""
    kind, args = command.get("type"), command.get("args") or {}
    if kind == "scan":
        # A full scan takes minutes on a real bus: keep systemd's watchdog fed meanwhile.
        return {"found": scan(bus, _int(args, "from", 1), _int(args, "to", 247),
                              lambda address, answered: notify("WATCHDOG=1"))}
    if kind == "read":
        address = _int(args, "address")
        model = args.get("model") or models.get(address, "DDSU666")
        return read_meter(bus, address, model, args.get("energy_register"))
    if kind == "probe":
        return probe(bus, _int(args, "address"))
    if kind == "set_address":
        return set_address(bus, str(args.get("model", "")), _int(args, "from"), _int(args, "to"))
    raise CommissioningError(f"unknown command type {kind!r}")


def run_commands(commands: list[dict], bus: Bus, outbox: Outbox, clock: Clock,
                 models: dict[int, str]) -> int:
    """Run new commands (never one seen before) and keep each outcome for posting."""
    ran = 0
    for command in commands:
        started = iso(clock.now())
        if not outbox.claim_command(command, started):
            continue  # already run (or interrupted): at most once, even if it comes again
        ran += 1
        log.info("running command %s (%s)", command["id"], command.get("type"))
        outcome = {"status": "done", "started_at": started, "result": {}, "error": None}
        try:
            outcome["result"] = execute(bus, command, models)
        except (CommissioningError, ModbusError, PortError, ValueError) as exc:
            outcome.update(status="failed", error=str(exc))
        outcome["finished_at"] = iso(clock.now())
        outcome["type"] = command.get("type")
        outbox.finish_command(str(command["id"]), outcome)
    return ran
