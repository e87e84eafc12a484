"""The two profiles, checked in fresh processes (settings are read once, at start).

Production must refuse to start without its secrets and addresses, must refuse
DEBUG, and with everything set must pass Django's deployment checks without a
single warning. The development default keeps its SQLite file under the var
folder, in WAL mode.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS")
# Variables from the surrounding shell (CI sets some) that would change what is tested.
SCRUBBED = (
    *REQUIRED,
    "MCOMS_PROFILE",
    "DEBUG",
    "MCOMS_VAR_DIR",
    "CELERY_TASK_ALWAYS_EAGER",
    "PAYMENT_BACKEND",
)


def production_values() -> dict[str, str]:
    # Nothing listens on port 9: a check that tried to connect would fail loudly.
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": "postgres://mcoms:secret@127.0.0.1:9/mcoms",
        "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",
        "ALLOWED_HOSTS": "mcoms.example.org",
        "PAYMENT_BACKEND": "live",
    }


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    clean.update({"MCOMS_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1", **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_production_without_any_required_variable_names_them_all(tmp_path):
    result = manage(tmp_path, "check", MCOMS_PROFILE="production")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    for name in REQUIRED:
        assert name in result.stderr


def test_production_refuses_the_console_payment_backend(tmp_path):
    values = production_values()
    values["PAYMENT_BACKEND"] = "console"
    result = manage(tmp_path, "check", MCOMS_PROFILE="production", **values)
    assert result.returncode != 0
    assert "PAYMENT_BACKEND=live" in result.stderr


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_refuses_to_start_naming_the_missing_variable(tmp_path, missing):
    values = production_values()
    values[missing] = ""  # empty counts as missing
    result = manage(tmp_path, "check", MCOMS_PROFILE="production", **values)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured")
    assert missing in last_line
    for present in set(REQUIRED) - {missing}:
        assert present not in last_line


def test_production_with_everything_set_passes_the_deployment_checks(tmp_path):
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        MCOMS_PROFILE="production",
        **production_values(),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in result.stdout, output
    assert "WARNINGS" not in output


@pytest.mark.parametrize("value", ["1", "true", "on"])
def test_debug_is_refused_in_production(tmp_path, value):
    result = manage(
        tmp_path, "check", MCOMS_PROFILE="production", DEBUG=value, **production_values()
    )
    assert result.returncode != 0
    assert "DEBUG must be off in the production profile" in result.stderr


PROBE = """
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    mode = cursor.fetchone()[0]
    cursor.execute("PRAGMA busy_timeout")
    busy = cursor.fetchone()[0]
print(connection.vendor, settings.DEBUG, settings.CELERY_BROKER_URL)
print(connection.settings_dict["NAME"])
print(mode, busy)
"""


def test_development_default_is_sqlite_in_wal_mode_under_the_var_dir(tmp_path):
    result = manage(tmp_path, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    first, name, pragmas = result.stdout.strip().splitlines()[-3:]
    assert first == "sqlite True filesystem://localhost/"
    assert Path(name) == tmp_path / "var" / "mcoms.sqlite3"
    assert Path(name).exists()
    mode, busy = pragmas.split()
    assert mode == "wal"
    assert int(busy) >= 5000  # writers wait for each other instead of failing at once
    assert (tmp_path / "var" / "broker" / "queue").is_dir()
