"""The link thread: heartbeats, config fetches, uploads, command outcomes, discoveries."""

from __future__ import annotations

import logging
import threading

from .clock import Clock
from .config import ConfigError, apply_server_config, save_cached
from .heartbeat import build_heartbeat, parse_answer
from .openems import PlantQueue, status_report
from .outbox import Outbox
from .uploader import Api, ApiError, Uploader, upload_offset

log = logging.getLogger(__name__)

CONFIG_RETRY_S = 60.0


class Link:
    """Talks to the platform on behalf of an Agent, on its own thread."""

    def __init__(self, agent, api: Api, clock: Clock | None = None, tick_s: float = 1.0):
        self.agent = agent
        self.api = api
        self.clock = clock or agent.clock
        self.tick_s = tick_s
        self.outbox = None  # opened on the link's own thread
        self.uploader: Uploader | None = None
        self.plant_uploader: Uploader | None = None
        self.next_heartbeat = 0.0
        self.config_version = agent.cfg.config_version
        self.next_config = 0.0  # monotonic time of the next config fetch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mcoms-link", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def open(self) -> None:
        """Open the link's own outbox connection (on the thread that will use it)."""
        self.outbox = Outbox(self.agent.outbox_path, self.agent.cfg.outbox_max_mb)
        self.uploader = Uploader(self.api, self.outbox, lambda: self.agent.cfg.gateway,
                                 self.clock, hold_s=self._upload_hold_s)
        self.plant = PlantQueue(self.outbox)
        self.plant_uploader = Uploader(self.api, self.plant, lambda: self.agent.cfg.gateway,
                                       self.clock, path="/plant")

    def _upload_hold_s(self) -> float:
        """This gateway's delay before a new interval's upload (the config of the moment:
        the server's answer may change the name or the interval)."""
        cfg = self.agent.cfg
        return upload_offset(cfg.gateway, cfg.upload_spread_s, cfg.log_interval_s)

    def _run(self) -> None:
        self.open()
        try:
            while not self._stop.is_set():
                try:
                    self.step()
                except Exception:  # the link must outlive any one bad answer
                    log.exception("link step failed")
                self._stop.wait(self.tick_s)
        finally:
            self.outbox.close()
            self.api.close()

    def step(self) -> None:
        """One round: config if needed, heartbeat if due, outcomes, then uploads."""
        if self.agent.config_applied.is_set():
            self.agent.config_applied.clear()
            self.next_heartbeat = 0.0  # the contract wants a heartbeat after a config change
        if self.clock.monotonic() >= self.next_config:
            self.fetch_config()
        if self.clock.monotonic() >= self.next_heartbeat and self.agent.cfg.gateway:
            self.heartbeat()
        self.post_outcomes()
        self.uploader.drain()
        if self.agent.cfg.openems is not None or self.plant.stats()["pending_samples"]:
            self.plant_uploader.drain()

    def fetch_config(self) -> None:
        """GET the config; a new version goes to the main thread, the answer to the cache."""
        # Until it succeeds, try again a minute later; afterwards only when told to.
        self.next_config = self.clock.monotonic() + CONFIG_RETRY_S
        try:
            response = self.api.get("/config")
        except ApiError as exc:
            log.warning("config not fetched (%s); polling with the cached one", exc)
            return
        if response.status_code != 200:
            log.error("config fetch answered %s; polling with the cached one",
                      response.status_code)
            return
        try:
            answer = response.json()
            cfg = apply_server_config(self.agent.cfg, answer)
        except (ValueError, ConfigError) as exc:
            log.error("server config refused, keeping the current one: %s", exc)
            return
        self.next_config = float("inf")
        if cfg.config_version != self.config_version or self.agent.cfg.gateway != cfg.gateway:
            save_cached(self.agent.cfg.state_dir, answer)
            self.config_version = cfg.config_version
            self.agent.inbox.put(("config", cfg))

    def heartbeat(self) -> None:
        """POST a heartbeat; fetch config if its version moved, queue its commands."""
        status = self.agent.status
        body = build_heartbeat(
            gateway=self.agent.cfg.gateway, config_version=self.config_version,
            uptime_s=self.clock.monotonic() - self.agent.started,
            clock_synced=status["clock_synced"], outbox=self.outbox.stats(),
            upload=self.uploader.status, bus=status["bus"], meters=status["meters"])
        if self.agent.cfg.openems is not None:  # optional field: older servers ignore it
            openems = getattr(self.agent, "openems", None)
            body["plant"] = status_report(openems.status if openems else None, self.plant)
            body["plant"]["upload_error"] = self.plant_uploader.status.last_error
        self.next_heartbeat = self.clock.monotonic() + self.agent.cfg.heartbeat_interval_s
        try:
            response = self.api.post("/heartbeat", body)
        except ApiError as exc:
            log.warning("heartbeat not delivered: %s", exc)
            return
        if response.status_code != 200:
            log.error("heartbeat answered %s", response.status_code)
            return
        try:
            answer = parse_answer(response.json())
        except ValueError:
            return
        if answer.config_version is not None and answer.config_version != self.config_version:
            self.fetch_config()
        if answer.commands:
            self.agent.inbox.put(("commands", answer.commands))

    def post_outcomes(self) -> None:
        """POST finished commands' outcomes (and a scan's discoveries first)."""
        for command_id, outcome in self.outbox.unposted_outcomes():
            if outcome.get("type") == "scan" and outcome["status"] == "done":
                body = {"gateway": self.agent.cfg.gateway, "scanned_at": outcome["finished_at"],
                        "found": outcome["result"].get("found", [])}
                if not self._posted(f"/discoveries#{command_id}", "/discoveries", body):
                    return
            body = {k: outcome.get(k) for k in ("status", "started_at", "finished_at",
                                                "result", "error")}
            if not self._posted(command_id, f"/commands/{command_id}/result", body):
                return
            self.outbox.mark_posted(command_id)

    def _posted(self, what: str, path: str, body: dict) -> bool:
        try:
            response = self.api.post(path, body)
        except ApiError as exc:
            log.warning("%s not posted: %s", what, exc)
            return False
        if response.status_code >= 500 or response.status_code in (401, 429):
            log.warning("%s not posted: HTTP %s", what, response.status_code)
            return False
        if response.status_code >= 400:
            log.error("%s refused by the server: HTTP %s", what, response.status_code)
        return True

