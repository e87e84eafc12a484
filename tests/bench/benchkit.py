"""What the PostgreSQL benchmarks share: the server of their scratch databases, free
ports, and gunicorn serving the platform while they measure it."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def admin(sql: str, server: str = SERVER) -> None:
    """Run ``sql`` on the server's maintenance database (create/drop the scratch one)."""
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def create_scratch(name: str, server: str = SERVER) -> None:
    """A new, empty scratch database ``name`` (one left by an earlier run is dropped)."""
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server)
    admin(f'CREATE DATABASE "{name}"', server)


def drop_scratch(name: str, server: str = SERVER) -> None:
    """This process's connections closed, then the scratch database dropped."""
    import contextlib

    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', server)


def bench_env(database_url: str) -> dict[str, str]:
    """The settings a benchmark runs the platform with (its process and gunicorn's)."""
    return {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "mcoms.settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-not-used-anywhere-else-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        # Tasks are queued in memory and never run.
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
    }


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """gunicorn serving the platform on a free port, started with ``options``."""

    def __init__(self, options: list[str], env: dict[str, str], *, nice: int = 0) -> None:
        """``nice`` lowers the CPU priority of the server's processes (a pool whose
        clients can wait, given less CPU than the pages staff wait on)."""
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "mcoms.wsgi:application", *options]
            + ["--bind", f"127.0.0.1:{self.port}", "--log-level", "warning"],
            cwd=ROOT,
            env={**os.environ, **env},
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status < 500:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("gunicorn did not start")

    def stop(self) -> None:
        """Stop the gunicorn this object started."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
