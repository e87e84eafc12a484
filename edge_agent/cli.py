"""``mcoms-edge`` / ``python -m edge_agent``: run, read, scan, probe, set-address, simulate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading

from . import __version__
from .bus import Bus, PortBusy, PortLock, SerialSettings
from .commissioning import CommissioningError, probe, read_meter, scan, set_address, verify_address
from .config import ConfigError, load_config
from .registers import MODELS

EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 1, 2, 3


def _port_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", required=True,
                   help="serial device (/dev/ttyUSB0, /dev/serial/by-id/...) or socket://host:port")
    p.add_argument("--baudrate", type=int, default=9600)
    p.add_argument("--parity", default="N", choices=["N", "E", "O"])
    p.add_argument("--stopbits", type=int, default=2, choices=[1, 2])
    p.add_argument("--timeout", type=float, default=0.3, help="seconds to wait for an answer")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="mcoms-edge", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="the service: poll the bus and forward readings")
    p.add_argument("--config", required=True)

    p = sub.add_parser("read", help="read every value of one meter")
    _port_args(p)
    p.add_argument("--address", type=int, required=True)
    p.add_argument("--model", default="DDSU666", type=str.upper, choices=MODELS)
    p.add_argument("--energy-register", help="DTSU666 only: 0x4000, 0x101E or 0x401E")
    p.add_argument("--json", action="store_true", help="one JSON object, the contract's fields")

    p = sub.add_parser("scan", help="find which addresses answer")
    _port_args(p)
    p.add_argument("--from", dest="first", type=int, default=1)
    p.add_argument("--to", dest="last", type=int, default=247)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("probe", help="identify a meter's model and register map")
    _port_args(p)
    p.add_argument("--address", type=int, required=True)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("set-address", help="change a meter's Modbus address")
    _port_args(p)
    p.add_argument("--model", required=True, type=str.upper, choices=MODELS)
    p.add_argument("--from", dest="old", type=int, required=True)
    p.add_argument("--to", dest="new", type=int, required=True)
    p.add_argument("--verify", action="store_true",
                   help="only check that the meter now answers at --to (after a power cycle)")

    p = sub.add_parser("simulate", help="serve a simulated bus of CHINT meters")
    p.add_argument("--listen", default="socket://127.0.0.1:5020",
                   help="socket://host:port or a serial device / pty")
    p.add_argument("--meters", default="10:DDSU666,11:DDSU666,100:DTSU666",
                   help="address:model[:fault], comma separated "
                        "(faults: silent, crc, exception, nan, impossible)")
    p.add_argument("--variant", default="all",
                   help="DTSU666 energy register served: all (default), 0x4000, 0x101E, 0x401E")
    p.add_argument("--power-cycle-after", type=float, default=5.0,
                   help="seconds until a DDSU666 takes a new address (its power cycle)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr,
        # journald stamps each line itself
        format="%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM")
        else "%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    handler = {"run": cmd_run, "simulate": cmd_simulate}.get(args.command)
    if handler:
        return handler(args)
    return _with_port(args)


def _with_port(args) -> int:
    try:
        lock = PortLock(args.port, f"mcoms-edge {args.command}").acquire()
    except PortBusy as exc:
        print(f"{args.port} is in use by {exc}. While the service holds the port, stop it "
              f"first (sudo systemctl stop mcoms-edge) or send this as a command from the "
              f"platform's gateway page.", file=sys.stderr)
        return EXIT_BUSY
    bus = Bus(args.port, SerialSettings(args.baudrate, args.parity, args.stopbits, 8,
                                        args.timeout))
    try:
        if not bus.ensure_open():
            print(bus.last_error, file=sys.stderr)
            return EXIT_FAILED
        return {"read": cmd_read, "scan": cmd_scan, "probe": cmd_probe,
                "set-address": cmd_set_address}[args.command](args, bus)
    except CommissioningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        bus.close()
        lock.release()


def cmd_read(args, bus: Bus) -> int:
    """Print one meter's values with units (or the contract's JSON)."""
    out = read_meter(bus, args.address, args.model, args.energy_register)
    if args.json:
        print(json.dumps({"address": args.address, **out["values"]}))
    else:
        print(f"address {args.address}: {out['model']} ({out['variant']})")
        for name, value in out["values"].items():
            print(f"  {name:14} {value} {out['units'][name]}".rstrip())
    for name, value in out["impossible"].items():
        print(f"  {name:14} {value}  IMPOSSIBLE (not a reading)", file=sys.stderr)
    return 0


def cmd_scan(args, bus: Bus) -> int:
    """Print which addresses answer, with progress on stderr."""
    def progress(address: int, answered: bool) -> None:
        mark = "answers" if answered else "-"
        print(f"\r{address:3d}/{args.last} {mark:8}", end="\n" if answered else "",
              file=sys.stderr, flush=True)

    found = scan(bus, args.first, args.last, progress)
    print(file=sys.stderr)
    if args.json:
        print(json.dumps(found))
        return 0
    print(f"{len(found)} of {args.last - args.first + 1} addresses answered:")
    for item in found:
        volts = "" if item["voltage_v"] is None else f" {item['voltage_v']} V"
        note = f" ({item['note']})" if item.get("note") else ""
        print(f"  {item['address']:3d}  {item['model_guess'] or 'unknown model'}{volts}{note}")
    return 0


def cmd_probe(args, bus: Bus) -> int:
    """Print which register map fits a meter."""
    result = probe(bus, args.address)
    if args.json:
        print(json.dumps(result))
        return 0 if result["model"] else EXIT_FAILED
    if not result["model"]:
        print(f"address {args.address}: " + "; ".join(result["notes"]))
        return EXIT_FAILED
    print(f"address {args.address}: {result['model']}, register map variant "
          f"{result['variant'] or '(energy register unknown)'}, function code "
          f"{result['function_code']:02d}")
    print(f"  voltage {result['voltage_v']} V, frequency {result['frequency_hz']} Hz")
    for reg, value in (result.get("energy_candidates") or {}).items():
        print(f"  energy at {reg}: {value}")
    if result.get("energy_register"):
        print(f"  energy register: {result['energy_register']} ({result.get('energy_kwh')} kWh)")
    for note in result["notes"]:
        print(f"  note: {note}")
    return 0


def cmd_set_address(args, bus: Bus) -> int:
    """Change (or, with --verify, check) a meter's address."""
    if args.verify:
        result = verify_address(bus, args.model, args.old, args.new)
    else:
        result = set_address(bus, args.model, args.old, args.new)
    print(result["message"])
    return 0


def cmd_run(args) -> int:
    """The service."""
    from .agent import Agent
    from .link import Link
    from .uploader import Api

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent = Agent(cfg)
    link = None
    if cfg.server_url and not cfg.read_token():
        logging.getLogger(__name__).error(
            "no token: set MCOMS_EDGE_TOKEN, server.token or server.token_file; readings are "
            "kept in the outbox until the server accepts one")
    if cfg.server_url:
        link = Link(agent, Api(cfg.server_url, lambda: agent.cfg.read_token(), cfg.upload_gzip))
    else:
        logging.getLogger(__name__).warning("no server.url: readings stay in the outbox")
    agent.run(stop, link)
    return 0


def cmd_simulate(args) -> int:
    """Serve a simulated bus until interrupted."""
    from .simulator import SimBus, parse_meters

    try:
        meters = parse_meters(args.meters, args.variant)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bus = SimBus(meters, args.power_cycle_after)
    print(f"simulating {len(meters)} meters on {args.listen}: "
          + ", ".join(f"{m.address}:{m.model}{':' + m.fault if m.fault else ''}" for m in meters),
          flush=True)

    async def serve():
        task = asyncio.ensure_future(bus.serve(args.listen))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(serve())
    return 0
