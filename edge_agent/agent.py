"""The service: sweeps on the main thread, the platform on a second one.

The main thread owns the bus. Between sweeps it commits interval readings to the
outbox, applies a new server config and runs commands. The link thread owns the
network: heartbeats, config fetches, uploads and command outcomes. They share
only the outbox file (each with its own SQLite connection) and a queue.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

from .bus import Bus, PortBusy, PortLock
from .clock import Clock, clock_synced, interval_start, iso, parse_iso
from .commands import run_commands
from .config import AgentConfig
from .csvlog import CsvLog
from .openems import OpenEMSPoller, PlantQueue
from .outbox import Outbox
from .poller import Poller
from .systemd import notify, watchdog_interval_s

log = logging.getLogger(__name__)


def sweep_budget_s(cfg: AgentConfig) -> float:
    """Bus time one sweep may use: under the poll interval, and never over 10 s."""
    return 0.9 * min(cfg.poll_interval_s, 10.0)


class Agent:
    """Sweeps, interval readings, config changes and commands: the main thread's work."""

    def __init__(self, cfg: AgentConfig, clock: Clock | None = None, sync_check=None):
        self.cfg = cfg
        self.clock = clock or Clock()
        self.sync_check = sync_check or (lambda: clock_synced(self.cfg.clock_sync))
        Path(cfg.state_dir).mkdir(parents=True, exist_ok=True)
        self.outbox_path = Path(cfg.state_dir) / "outbox.sqlite3"
        self.outbox = Outbox(self.outbox_path, cfg.outbox_max_mb)
        self.outbox.interrupted_commands(iso(self.clock.now()))
        self.progress = self.outbox.progress()
        self.bus = Bus(cfg.port, cfg.serial)
        self.poller = Poller(self.bus, cfg.meters, self.clock, sweep_budget_s(cfg),
                             cfg.meter_latency_s)
        self.csv = self._csv(cfg)
        # Plant telemetry (OpenEMS Edge's REST API), kept in the same outbox file.
        self.plant = PlantQueue(self.outbox)
        self.openems = (OpenEMSPoller(cfg.openems, self.clock, self.plant.last_ts(),
                                      poll_interval_s=cfg.poll_interval_s)
                        if cfg.openems else None)
        self.inbox: queue.Queue = queue.Queue()
        self.started = self.clock.monotonic()
        self.status: dict = {"clock_synced": False, "bus": {"port_open": False,
                                                          "last_sweep_s": None}, "meters": []}
        self.config_applied = threading.Event()

    @staticmethod
    def _csv(cfg: AgentConfig) -> CsvLog | None:
        if not cfg.csv_log:
            return None
        tz = ZoneInfo(cfg.site_timezone) if cfg.site_timezone else None
        return CsvLog(Path(cfg.state_dir) / "data", tz)

    def apply_config(self, cfg: AgentConfig) -> None:
        """Use a new configuration from the next sweep on (called between sweeps)."""
        log.info("applying server config version %s (%d meters)", cfg.config_version,
                 len(cfg.meters))
        self.cfg = cfg
        self.bus.apply_settings(cfg.serial)
        self.poller.set_meters(cfg.meters)
        self.poller.budget_s = sweep_budget_s(cfg)
        self.poller.latency_s = cfg.meter_latency_s
        if self.openems is not None:
            self.openems.poll_interval_s = cfg.poll_interval_s
        self.csv = self._csv(cfg)
        self.config_applied.set()

    def due(self, synced: bool) -> dict[int, str]:
        """Meters owing a reading for the current interval, and its boundary."""
        if not synced:
            return {}
        now = self.clock.now()
        boundary = interval_start(now, self.cfg.log_interval_s)
        # Past half an interval the values would no longer describe the boundary.
        if (now - boundary).total_seconds() > self.cfg.log_interval_s / 2:
            return {}
        ts = iso(boundary)
        return {a: ts for a in self.poller.states if self.progress.get(a, "") < ts}

    def step(self) -> None:
        """Between-sweep work, then one sweep and its readings."""
        commands = self._drain_inbox()
        synced = bool(self.sync_check())
        due = self.due(synced)
        result = self.poller.sweep(list(due))
        readings = [{"address": a, "ts": due[a], **result.values[a]}
                    for a in sorted(result.energy_read)]
        if readings:
            self.outbox.add(readings)
            for reading in readings:
                self.progress[reading["address"]] = reading["ts"]
                if self.csv:
                    self.csv.write(reading, parse_iso(reading["ts"]))
        if self.openems is not None:
            self.plant.add(self.openems.poll(synced))
        if commands:
            models = {m.address: m.model for m in self.cfg.meters}
            run_commands(commands, self.bus, self.outbox, self.clock, models)
        self.status = {
            "clock_synced": synced,
            "bus": {"port_open": result.port_open, "last_sweep_s": round(result.duration_s, 2),
                    "port_error": self.bus.last_error},
            "meters": self.poller.meter_report(),
        }

    def _pause(self, stop: threading.Event, started: float) -> None:
        """Wait for the next sweep, feeding the watchdog if the poll interval is long."""
        step = watchdog_interval_s() or float("inf")
        while not stop.is_set():
            pause = self.cfg.poll_interval_s - (self.clock.monotonic() - started)
            if pause <= 0:
                return
            if stop.wait(min(pause, step)):
                return
            if pause > step:
                notify("WATCHDOG=1")

    def summary(self) -> str:
        """One line for `systemctl status`."""
        meters = self.status["meters"]
        ok = sum(1 for m in meters if m["ok"])
        port = "open" if self.status["bus"]["port_open"] else "NOT OPEN"
        synced = "" if self.status["clock_synced"] else ", clock not synchronised"
        return f"{ok}/{len(meters)} meters answering, port {port}{synced}"

    def _drain_inbox(self) -> list[dict]:
        commands: list[dict] = []
        while True:
            try:
                kind, item = self.inbox.get_nowait()
            except queue.Empty:
                return commands
            if kind == "config":
                self.apply_config(item)
            else:
                commands.extend(item)

    def run(self, stop: threading.Event, link=None) -> None:
        """The service loop: hold the port lock, sweep every poll interval until stopped."""
        notify("READY=1")  # the outbox is open: readings can be kept from now on
        lock = PortLock(self.cfg.port, "mcoms-edge run")
        while not stop.is_set():
            try:
                lock.acquire()
                break
            except PortBusy as exc:
                log.error("port %s is held by %s; waiting", self.cfg.port, exc)
                notify("WATCHDOG=1")
                stop.wait(self.cfg.poll_interval_s)
        if link:
            link.start()
        try:
            while not stop.is_set():
                started = self.clock.monotonic()
                self.step()
                notify(f"WATCHDOG=1\nSTATUS={self.summary()}")
                self._pause(stop, started)
        finally:
            notify("STOPPING=1")
            if link:
                link.stop()
            self.bus.close()
            if self.openems is not None:
                self.openems.close()
            self.outbox.close()
            lock.release()
