"""Shared pieces of the edge agent's tests: free ports, the simulator, agent processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def write_config(path: Path, **overrides) -> Path:
    data = {
        "server": {"url": "http://127.0.0.1:9", "token": "secret"},
        "bus": {"port": "socket://127.0.0.1:9", "timeout_s": 0.1},
        "poll_interval_s": 0.2,
        "log_interval_s": 1,
        "heartbeat_interval_s": 1,
        "state_dir": str(path.parent / "state"),
        "clock_sync": "always",
        "gateway": "kla-block-a",
        "meters": [{"id": 10, "name": "a", "type": "1phase", "enabled": True},
                   {"id": 100, "name": "b", "type": "3phase", "enabled": True}],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data))
    return path


def agent_env(tmp_path: Path, **extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MCOMS_EDGE_LOCK_DIR": str(tmp_path),
           "PYTHONUNBUFFERED": "1"}
    env.pop("MCOMS_EDGE_SERVER_URL", None)
    env.pop("MCOMS_EDGE_TOKEN", None)
    env.update(extra)
    return env


def start_agent(config: Path, env: dict, log_path: Path) -> subprocess.Popen:
    fh = open(log_path, "ab")  # noqa: SIM115 - kept open for the process's life
    return subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
                            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_cli(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_agent", *map(str, args)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
