"""systemd: READY=1 once the outbox is open, WATCHDOG=1 while alive, a unit that verifies."""

import configparser
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from edge_agent.systemd import notify, watchdog_interval_s

from .helpers import ROOT, agent_env, start_agent, stop, wait_for, write_config

UNIT = ROOT / "edge_agent" / "systemd" / "mcoms-edge.service"


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    messages = []

    def received():
        try:
            while True:
                messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            pass
        return messages

    yield path, received
    sock.close()


def test_notify_writes_to_the_socket(notify_socket):
    path, received = notify_socket
    assert notify("READY=1", env={"NOTIFY_SOCKET": path})
    assert received() == ["READY=1"]
    assert not notify("READY=1", env={})
    assert watchdog_interval_s({"WATCHDOG_USEC": "120000000"}) == 60.0


def test_ready_after_the_outbox_then_watchdog_even_without_the_usb_adapter(
        tmp_path, notify_socket, platform):
    path, received = notify_socket
    platform.config.update(poll_interval_s=0.2, heartbeat_interval_s=1, meters=[
        {"address": 10, "model": "DDSU666"}])
    config = write_config(tmp_path / "config.yaml", server={"url": platform.url},
                          bus={"port": str(tmp_path / "ttyUSB-unplugged")})
    proc = start_agent(config, agent_env(tmp_path, NOTIFY_SOCKET=path), tmp_path / "agent.log")
    try:
        wait_for(lambda: "READY=1" in received(), timeout=15)
        assert (tmp_path / "state" / "outbox.sqlite3").exists()
        wait_for(lambda: sum(m.startswith("WATCHDOG=1") for m in received()) >= 5, timeout=15)
        assert "STATUS=0/1 meters answering, port NOT OPEN" in received()[-1]
        beat = wait_for(lambda: platform.heartbeats and platform.heartbeats[-1], timeout=15)
        assert beat["bus"]["port_open"] is False
        assert "ttyUSB-unplugged" in beat["bus"]["port_error"]
        assert proc.poll() is None  # reported and retried, not a reason to die
    finally:
        stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    assert "STOPPING=1" in received()
    log = (tmp_path / "agent.log").read_text()
    assert log.count("cannot open") == 1  # said once, not every sweep


def test_unit_file_has_what_the_service_needs():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "always"
    assert int(service["WatchdogSec"]) >= 30
    assert "dialout" in service["SupplementaryGroups"]
    assert service["StateDirectory"] == "mcoms-edge"
    assert service["ExecStart"].endswith("run --config /etc/mcoms-edge/config.yaml")
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    # verify insists that ExecStart exists; on a Pi install.sh puts it there.
    exe = tmp_path / "mcoms-edge"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "mcoms-edge.service"
    unit.write_text(UNIT.read_text().replace("/opt/mcoms-edge/venv/bin/mcoms-edge", str(exe)))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    problems = [line for line in (out.stdout + out.stderr).splitlines()
                if "mcoms-edge.service" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_install_script_is_valid_bash():
    script = Path(ROOT / "edge_agent" / "install.sh")
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_a_long_poll_interval_still_feeds_the_watchdog(tmp_path, notify_socket, platform):
    path, received = notify_socket
    platform.config.update(poll_interval_s=30, meters=[])
    config = write_config(tmp_path / "config.yaml", server={"url": platform.url},
                          bus={"port": str(tmp_path / "ttyUSB-none")}, poll_interval_s=30)
    env = agent_env(tmp_path, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")  # 0.4 s
    proc = start_agent(config, env, tmp_path / "agent.log")
    try:
        wait_for(lambda: sum(m.startswith("WATCHDOG=1") for m in received()) >= 5, timeout=10)
    finally:
        stop(proc)
