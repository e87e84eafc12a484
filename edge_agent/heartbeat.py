"""The heartbeat as the contract describes it, and what its answer asks for."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import __version__


@dataclass
class HeartbeatAnswer:
    """The server's answer: its config version and any commands."""

    config_version: int | None = None
    commands: list[dict] = field(default_factory=list)


def build_heartbeat(*, gateway: str, config_version, uptime_s: float, clock_synced: bool,
                    outbox: dict, upload, bus: dict, meters: list[dict]) -> dict:
    """The heartbeat body; ``upload`` is the uploader's status (401s are reported loudly)."""
    outbox = dict(outbox)
    if upload is not None:
        outbox["upload_held_401"] = upload.auth_failed
        outbox["last_upload_error"] = upload.last_error
    return {"gateway": gateway, "agent_version": __version__, "config_version": config_version,
            "uptime_s": int(uptime_s), "clock_synced": clock_synced, "outbox": outbox,
            "bus": bus, "meters": meters}


def parse_answer(body) -> HeartbeatAnswer:
    """Tolerant reading of the answer: unknown fields are ignored, bad commands skipped."""
    if not isinstance(body, dict):
        return HeartbeatAnswer()
    version = body.get("config_version")
    commands = [c for c in body.get("commands") or [] if isinstance(c, dict) and "id" in c]
    return HeartbeatAnswer(version if isinstance(version, int) else None, commands)
