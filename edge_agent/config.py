"""The agent's configuration: its YAML file, the server's answer on top, and the disk cache.

The file accepts the operator's legacy ``meters:`` entries (``id``, ``type: 1phase``)
as well as the server's form (``address``, ``model``). A bad value of a known key
stops the agent naming the key; an unknown key is only a warning, since a newer
installer or server may know it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from .bus import SerialSettings
from .openems import OpenEMSConfig, OpenEMSConfigError, parse_openems
from .registers import MODELS, RegisterMap, parse_register, register_map

log = logging.getLogger(__name__)

LEGACY_TYPES = {"1phase": "DDSU666", "3phase": "DTSU666"}
KNOWN_VARIANTS = {None, "", "standard"}
TOP_KEYS = {"server", "bus", "poll_interval_s", "log_interval_s", "heartbeat_interval_s",
            "state_dir", "csv_log", "meters", "gateway", "site_timezone", "clock_sync",
            "outbox_max_mb", "upload_gzip", "upload_spread_s", "meter_latency_s", "openems"}
SERVER_KEYS = {"url", "token", "token_file"}
BUS_KEYS = {"port", "baudrate", "parity", "stopbits", "bytesize", "timeout_s"}
METER_KEYS = {"id", "address", "name", "type", "model", "variant", "energy_register",
              "ct_ratio", "serial", "enabled"}


class ConfigError(ValueError):
    """A configuration value the agent cannot run with; the message names the key."""


@dataclass(frozen=True)
class MeterConfig:
    """One meter on the bus."""

    address: int
    model: str
    name: str = ""
    variant: str | None = None
    energy_register: int | None = None
    ct_ratio: float = 1.0
    serial: str | None = None
    enabled: bool = True

    def register_map(self) -> RegisterMap:
        """This meter's register map (model, variant, energy register)."""
        return register_map(self.model, self.variant, self.energy_register)


@dataclass(frozen=True)
class AgentConfig:
    """Everything the service runs with."""

    port: str
    server_url: str | None = None
    token: str | None = None
    token_file: str | None = None
    gateway: str | None = None
    serial: SerialSettings = field(default_factory=SerialSettings)
    poll_interval_s: float = 10.0
    log_interval_s: int = 900
    heartbeat_interval_s: float = 300.0
    state_dir: str = "/var/lib/mcoms-edge"
    csv_log: bool = False
    site_timezone: str | None = None
    clock_sync: str = "auto"
    outbox_max_mb: float = 200.0
    upload_gzip: bool = True
    # A new interval's readings wait a fixed delay below this (taken from the gateway's
    # name) before going out, so a fleet's uploads do not all land in the same second.
    upload_spread_s: float = 60.0
    meter_latency_s: float = 0.02
    meters: tuple[MeterConfig, ...] = ()
    config_version: int | None = None
    openems: OpenEMSConfig | None = None  # plant telemetry (see openems.py); local only

    def read_token(self) -> str | None:
        """The token, read afresh each time so a fixed token file takes effect at once."""
        if self.token:
            return self.token
        if self.token_file:
            try:
                return Path(self.token_file).read_text().strip() or None
            except OSError as exc:
                log.error("cannot read token file %s: %s", self.token_file, exc)
        return None


def _check(path: str, value, kind, *, choices=None, minimum=None):
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok:
        raise ConfigError(f"{path}: expected {kind.__name__}, got {value!r}")
    if choices is not None and value not in choices:
        raise ConfigError(f"{path}: expected one of {sorted(choices)}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{path}: must be at least {minimum}, got {value!r}")
    return value


def _unknown(path: str, data: dict, known: set, warnings: list[str]) -> None:
    for key in data:
        if key not in known:
            warnings.append(f"unknown key {path}{key} ignored")


def parse_meter(item, path: str, warnings: list[str]) -> MeterConfig:
    """One meter from the operator's legacy form or the server's form."""
    if not isinstance(item, dict):
        raise ConfigError(f"{path}: expected a mapping, got {item!r}")
    _unknown(f"{path}.", item, METER_KEYS, warnings)
    key = "address" if "address" in item else "id"
    if key not in item:
        raise ConfigError(f"{path}: needs `id` or `address`")
    address = _check(f"{path}.{key}", item[key], int, minimum=1)
    if address > 247:
        raise ConfigError(f"{path}.{key}: Modbus addresses go up to 247, got {address}")
    if "model" in item:
        model = str(_check(f"{path}.model", item["model"], str)).upper()
        _check(f"{path}.model", model, str, choices=set(MODELS))
    else:
        kind = _check(f"{path}.type", item.get("type", "1phase"), str, choices=set(LEGACY_TYPES))
        model = LEGACY_TYPES[kind]
    try:
        energy = parse_register(item.get("energy_register"))
    except ValueError:
        raise ConfigError(f"{path}.energy_register: not a register address: "
                          f"{item['energy_register']!r}") from None
    meter = MeterConfig(
        address=address, model=model,
        name=str(item.get("name") or ""),
        variant=item.get("variant"),
        energy_register=energy,
        ct_ratio=_check(f"{path}.ct_ratio", item.get("ct_ratio", 1.0), float, minimum=0.001),
        serial=None if item.get("serial") is None else str(item["serial"]),
        enabled=_check(f"{path}.enabled", item.get("enabled", True), bool),
    )
    try:
        meter.register_map()
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return meter


def parse_meters(items, path: str, warnings: list[str]) -> tuple[MeterConfig, ...]:
    """A list of meters; two meters at one address is an error."""
    if not isinstance(items, list):
        raise ConfigError(f"{path}: expected a list, got {items!r}")
    meters = tuple(parse_meter(m, f"{path}[{i}]", warnings) for i, m in enumerate(items))
    seen: set[int] = set()
    for m in meters:
        if m.address in seen:
            raise ConfigError(f"{path}: address {m.address} appears twice")
        seen.add(m.address)
    return meters


def _serial(data: dict, base: SerialSettings, path: str) -> SerialSettings:
    return replace(
        base,
        baudrate=_check(f"{path}baudrate", data.get("baudrate", base.baudrate), int,
                        choices={1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}),
        parity=_check(f"{path}parity", data.get("parity", base.parity), str,
                      choices={"N", "E", "O"}),
        stopbits=_check(f"{path}stopbits", data.get("stopbits", base.stopbits), int,
                        choices={1, 2}),
        bytesize=_check(f"{path}bytesize", data.get("bytesize", base.bytesize), int,
                        choices={7, 8}),
        timeout_s=_check(f"{path}timeout_s", data.get("timeout_s", base.timeout_s), float,
                         minimum=0.02),
    )


def parse_config(data, env: dict | None = None) -> tuple[AgentConfig, list[str]]:
    """An AgentConfig from the YAML file's content, with environment overrides applied."""
    env = os.environ if env is None else env
    warnings: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError("the configuration file must be a YAML mapping")
    _unknown("", data, TOP_KEYS, warnings)
    server = data.get("server") or {}
    bus = data.get("bus") or {}
    for name, section, known in (("server", server, SERVER_KEYS), ("bus", bus, BUS_KEYS)):
        if not isinstance(section, dict):
            raise ConfigError(f"{name}: expected a mapping, got {section!r}")
        _unknown(f"{name}.", section, known, warnings)
    if "port" not in bus:
        raise ConfigError("bus.port: required (a serial device or socket://host:port)")
    if data.get("gateway") is not None:
        _check("gateway", data["gateway"], str)
    tz = data.get("site_timezone")
    if tz is not None:
        _check("site_timezone", tz, str)
        _timezone(tz)
    cfg = AgentConfig(
        port=_check("bus.port", bus["port"], str),
        server_url=env.get("MCOMS_EDGE_SERVER_URL") or server.get("url"),
        token=env.get("MCOMS_EDGE_TOKEN") or server.get("token"),
        token_file=server.get("token_file"),
        gateway=data.get("gateway"),
        serial=_serial(bus, SerialSettings(), "bus."),
        poll_interval_s=_check("poll_interval_s", data.get("poll_interval_s", 10.0), float,
                               minimum=0.05),
        log_interval_s=_check("log_interval_s", data.get("log_interval_s", 900), int, minimum=1),
        heartbeat_interval_s=_check("heartbeat_interval_s",
                                    data.get("heartbeat_interval_s", 300.0), float, minimum=1),
        state_dir=_check("state_dir", data.get("state_dir", "/var/lib/mcoms-edge"), str),
        csv_log=_check("csv_log", data.get("csv_log", False), bool),
        site_timezone=tz,
        clock_sync=_check("clock_sync", data.get("clock_sync", "auto"), str),
        outbox_max_mb=_check("outbox_max_mb", data.get("outbox_max_mb", 200.0), float,
                             minimum=0.01),
        upload_gzip=_check("upload_gzip", data.get("upload_gzip", True), bool),
        upload_spread_s=_check("upload_spread_s", data.get("upload_spread_s", 60.0), float,
                               minimum=0.0),
        meter_latency_s=_check("meter_latency_s", data.get("meter_latency_s", 0.02), float,
                               minimum=0.0),
        meters=parse_meters(data.get("meters") or [], "meters", warnings),
        openems=_openems(data.get("openems"), warnings),
    )
    if cfg.clock_sync not in ("auto", "always", "never") and not cfg.clock_sync.startswith("file:"):
        raise ConfigError(f"clock_sync: expected auto, always, never or file:PATH, "
                          f"got {cfg.clock_sync!r}")
    if cfg.server_url and not cfg.server_url.startswith(("http://", "https://")):
        raise ConfigError(f"server.url: expected an http(s) URL, got {cfg.server_url!r}")
    return cfg, warnings


def _openems(data, warnings: list[str]) -> OpenEMSConfig | None:
    try:
        return parse_openems(data, warnings)
    except OpenEMSConfigError as exc:
        raise ConfigError(str(exc)) from None


def _timezone(name: str):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"site_timezone: unknown time zone {name!r}") from None


def load_config(path: str, env: dict | None = None) -> AgentConfig:
    """Read the YAML file; warnings are logged, errors raise ConfigError."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    cfg, warnings = parse_config(data, env)
    for warning in warnings:
        log.warning("%s: %s", path, warning)
    cached = load_cached(cfg.state_dir)
    if cached is not None:
        try:
            cfg = apply_server_config(cfg, cached)
        except ConfigError as exc:
            log.error("ignoring cached server configuration: %s", exc)
    return cfg


def apply_server_config(cfg: AgentConfig, answer: dict) -> AgentConfig:
    """The local config with the server's answer on top (meters, intervals, line settings)."""
    if not isinstance(answer, dict):
        raise ConfigError("server config: expected a JSON object")
    version = answer.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError(f"server config version: expected int, got {version!r}")
    serial = answer.get("serial") or {}
    if not isinstance(serial, dict):
        raise ConfigError(f"server config serial: expected an object, got {serial!r}")
    changes = {
        "config_version": version,
        "gateway": answer.get("gateway") or cfg.gateway,
        "serial": _serial(serial, cfg.serial, "server config serial."),
        "meters": _server_meters(answer.get("meters", [])),
    }
    for key, kind, minimum in (("poll_interval_s", float, 0.05), ("log_interval_s", int, 1),
                               ("heartbeat_interval_s", float, 1)):
        if key in answer:
            changes[key] = _check(f"server config {key}", answer[key], kind, minimum=minimum)
    return replace(cfg, **changes)


def _server_meters(items) -> tuple[MeterConfig, ...]:
    """The server's meters; one this agent cannot poll is skipped, not the whole answer."""
    if not isinstance(items, list):
        raise ConfigError(f"server config meters: expected a list, got {items!r}")
    meters: dict[int, MeterConfig] = {}
    for i, item in enumerate(items):
        try:
            meter = parse_meter(item, f"server config meters[{i}]", [])
        except ConfigError as exc:
            log.error("meter not polled: %s", exc)
            continue
        if meter.address in meters:
            log.error("meter not polled: server config meters[%d]: address %d appears twice",
                      i, meter.address)
            continue
        if meter.variant not in KNOWN_VARIANTS and not str(meter.variant).startswith("energy@"):
            log.warning("meter %d: variant %r is unknown to this agent; polling it with the %s "
                        "map (%s)", meter.address, meter.variant, meter.model,
                        meter.register_map().variant)
        meters[meter.address] = meter
    return tuple(meters.values())


def cache_path(state_dir: str) -> Path:
    """Where the last good server answer is kept."""
    return Path(state_dir) / "server-config.json"


def save_cached(state_dir: str, answer: dict) -> None:
    """Keep the server's answer on disk, atomically (a power cut leaves old or new)."""
    path = cache_path(state_dir)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(answer, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_cached(state_dir: str) -> dict | None:
    """The cached server answer, if any."""
    try:
        return json.loads(cache_path(state_dir).read_text())
    except (OSError, ValueError):
        return None
