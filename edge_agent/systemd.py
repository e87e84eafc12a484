"""sd_notify without a dependency: READY=1, WATCHDOG=1 and STATUS= to $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket


def notify(message: str, env: dict | None = None) -> bool:
    """Send one notification to systemd; False when not run by systemd (or it failed)."""
    path = (os.environ if env is None else env).get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
        return True
    except OSError:
        return False


def watchdog_interval_s(env: dict | None = None) -> float | None:
    """Half the watchdog timeout systemd set for this process, or None without a watchdog."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
