"""Helpers for the operations tests: PostgreSQL databases of our own, beside the test one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from tests.metering.edge_fixtures import bus  # noqa: F401  (a gateway with meters)

ROOT = Path(__file__).resolve().parents[2]


def server_url(dbname: str) -> str:
    """A DATABASE_URL for ``dbname`` on the server the tests run against."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "postgres")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{dbname}"


def psql(sql: str, dbname: str = "postgres") -> str:
    return subprocess.run(
        ["psql", server_url(dbname), "-XAtc", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def drop(dbname: str) -> None:
    psql(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def manage(*args: str, url: str, var: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run manage.py in a separate process against ``url`` (its own var/ folder)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MCOMS_VAR_DIR": str(var),
        "MCOMS_PROFILE": "development",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        check=check,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def scratch_databases():
    """Names of PostgreSQL databases a test creates; all dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        drop(name)
