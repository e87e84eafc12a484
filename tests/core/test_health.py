"""/healthz: 200 with database and broker status, 503 when either is down."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections
from django.db.utils import ConnectionHandler

from mcoms.celery import app
from mcoms.core import health

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["database"]["ok"] and body["database"]["vendor"] == connections["default"].vendor
    assert body["broker"]["ok"]


def test_broker_down_gives_503(client, monkeypatch):
    down = f"redis://127.0.0.1:{closed_port()}/0"
    # Celery prefers the environment's CELERY_BROKER_URL (set in CI) over its config, and
    # reads it when asked for broker_url: change the config first, so that what is put back
    # afterwards is the real URL and not this one.
    monkeypatch.setattr(app.conf, "broker_url", down)
    monkeypatch.setenv("CELERY_BROKER_URL", down)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False and body["broker"]["ok"] is False and body["database"]["ok"]
    assert body["broker"]["error"]


def test_database_down_is_reported():
    dead = ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "x",
                "USER": "x",
                "HOST": "127.0.0.1",
                "PORT": str(closed_port()),
                "OPTIONS": {"connect_timeout": 2},
            }
        }
    )
    result = health.database_ok(dead["default"])
    assert result["ok"] is False and result["error"]


def test_database_down_gives_503(tmp_path):
    """A process whose database is unreachable answers 503 and says why."""
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/healthz');"
        "print(r.status_code, json.dumps(r.json()))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mcoms.settings",
        "DATABASE_URL": f"postgres://nobody@127.0.0.1:{closed_port()}/none",
        "CELERY_BROKER_URL": "filesystem://localhost/",
        "MCOMS_VAR_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    status, body = done.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "503", done.stderr[-2000:]
    body = json.loads(body)
    assert body["database"]["ok"] is False and body["broker"]["ok"] is True
