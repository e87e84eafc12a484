"""End to end, the embedded default that ``make run`` starts: real processes, own SQLite file.

In a fresh var folder: migrate, load the demo (twice: the second load changes
nothing), start ``scripts/run.py`` on a non-default port in its own session, wait
for /healthz, sign in through the login form with a real cookie session, watch
the Celery worker deliver the demo's queued welcome SMS, then press "Ctrl-C"
(SIGINT to the process group) and check that web, worker and beat (and the demo
edge agent with its simulated bus) are all gone.

This does not use pytest-django's test database: the processes share their own
SQLite file, which the test reads with the standard library.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from mcoms.demo import DEMO_PASSWORD

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Anything that would point the processes away from the embedded default.
SCRUBBED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "MCOMS_PROFILE",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CELERY_TASK_ALWAYS_EAGER",
    "PORT",
)
COUNTED_TABLES = (
    "core_user",
    "core_site",
    "customers_customer",
    "customers_servicerequest",
    "metering_meter",
    "metering_gateway",
    "notifications_message",
    "notifications_messagetemplate",
    "core_auditevent",
)


@pytest.fixture
def embedded_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update({"MCOMS_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    # Read-only, so the test never holds a write lock the processes wait on.
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def counts(db: Path) -> dict[str, int]:
    return {table: query(db, f"SELECT count(*) FROM {table}")[0][0] for table in COUNTED_TABLES}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert port != 8000
    return port


def group_members(pgid: int) -> dict[int, str]:
    """Live (non-zombie) processes in a process group: pid → command line."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone while we looked
            continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        state, _ppid, pgrp = text.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members[int(stat.parent.name)] = cmdline
    return members


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, timeout: float, step: float = 0.5, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


class Browser:
    """A cookie-keeping HTTP client that, like a browser, follows redirects."""

    def __init__(self, base: str):
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str):
        return self.opener.open(self.base + path, timeout=10)

    def post(self, path: str, data: dict[str, str]):
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(
            self.base + path, data=body, headers={"Referer": self.base + path}
        )
        return self.opener.open(request, timeout=10)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.cookies if c.name == name), None)


def healthz(base: str):
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, None


def test_make_run_starts_web_worker_and_beat_and_ctrl_c_stops_them(embedded_env, tmp_path):
    var = Path(embedded_env["MCOMS_VAR_DIR"])
    db = var / "mcoms.sqlite3"

    manage(embedded_env, "migrate", "--noinput")
    assert "Demo data loaded." in manage(embedded_env, "seed_demo")
    first = counts(db)
    # What seed_demo queued; once running, the periodic checks the worker runs as beat
    # starts (outages on the demo sites without a live bus, for one) queue their own.
    (seeded,) = query(db, "SELECT max(id) FROM notifications_message")[0]
    assert first["customers_customer"] >= 40 and first["core_user"] >= 8
    assert first["notifications_message"] > 0
    assert "already present" in manage(embedded_env, "seed_demo")
    assert counts(db) == first, "a second seed_demo must not add anything"
    # The demo queued its welcome SMS; no worker has run yet.
    assert query(db, "SELECT DISTINCT status FROM notifications_message") == [("queued",)]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "scripts/run.py", "--port", str(port)],
            cwd=ROOT,
            env=embedded_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as in a terminal
            # A terminal delivers Ctrl-C to a process that has not ignored SIGINT.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def log_text() -> str:
        return log_path.read_text(errors="replace")[-4000:]

    try:

        def healthy():
            assert proc.poll() is None, f"run.py exited early:\n{log_text()}"
            status, body = healthz(base)
            return body if status == 200 else None

        body = wait_for(healthy, timeout=60, what=f"{base}/healthz to answer 200")
        assert body["database"] == {"ok": True, "vendor": "sqlite"}
        assert body["broker"]["ok"] and body["broker"]["transport"] == "filesystem"

        # The login page renders, and a demo user signs in through it (CSRF and all).
        browser = Browser(base)
        with browser.get("/accounts/login/") as response:
            assert response.status == 200
            page = response.read().decode()
        assert 'name="username"' in page and 'name="password"' in page
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        assert browser.cookie("csrftoken")
        with browser.post(
            "/accounts/login/",
            {
                "csrfmiddlewaretoken": token,
                "username": "sitemanager",
                "password": DEMO_PASSWORD,
                "next": "",
            },
        ) as response:
            assert response.status == 200
            assert urllib.parse.urlsplit(response.url).path == "/dashboard/", response.url
            dashboard = response.read().decode()
        assert browser.cookie("sessionid")
        assert "Sign out (sitemanager)" in dashboard
        with browser.get("/dashboard/") as response:
            assert response.status == 200

        # The worker, a separate process, picked up what seed_demo queued and sent it.
        total = first["notifications_message"]

        def all_sent():
            rows = dict(
                query(
                    db,
                    "SELECT status, count(*) FROM notifications_message WHERE id <= ? GROUP BY 1",
                    (seeded,),
                )
            )
            return rows if rows.get("sent") == total else None

        wait_for(all_sent, timeout=60, what=f"the worker to send all {total} queued messages")

        # The demo's token sale: the worker buys the token from the fake Calin head-end
        # run.py started, and texts it to the customer.
        def token_issued():
            rows = query(
                db,
                "SELECT t.token FROM prepaid_tokenpurchase t WHERE t.status = 'vended' "
                "AND EXISTS (SELECT 1 FROM notifications_message m "
                "WHERE m.template_key = 'token_issued' AND m.status = 'sent')",
            )
            return rows or None

        (token,) = wait_for(token_issued, timeout=60, what="the demo's token from fake Calin")[0]
        assert len(token) >= 16

        # The edge processes start once `manage.py demo_edge` has prepared the gateway.
        def started():
            found = group_members(proc.pid)
            cmds = " | ".join(cmd for pid, cmd in found.items() if pid != proc.pid)
            return (found, cmds) if "edge_agent run" in cmds else None

        members, kinds = wait_for(started, timeout=60, what="the demo's edge agent to start")
        children = {pid: cmd for pid, cmd in members.items() if pid != proc.pid}
        assert "runserver" in kinds and " worker" in kinds and " beat" in kinds, members
        # With the demo loaded, make run also starts the demo site's edge agent on a simulated bus.
        assert "edge_agent run" in kinds and "edge_agent simulate" in kinds, members
        assert "metering.steering.fake_calin" in kinds, members  # the demo's Calin head-end

        # …and its readings arrive through the real edge API: the demo gateway's meters get
        # live readings (the demo bus logs every minute) and go online.
        def live_readings():
            rows = query(
                db,
                "SELECT count(*), count(DISTINCT r.meter_id) FROM metering_reading r "
                "JOIN metering_meter m ON m.id = r.meter_id "
                "JOIN metering_gateway g ON g.id = m.gateway_id "
                "WHERE g.name = 'kla-a-bus-1' AND r.quality = 'valid'",
            )
            count, meters = rows[0]
            return (count, meters) if meters >= 20 else None

        wait_for(
            live_readings,
            timeout=100,
            step=2,
            what="live readings from the demo gateway's simulated bus",
        )
        # (Only the edge API writes readings for that gateway: they came through it.)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        raise

    # Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
    os.killpg(proc.pid, signal.SIGINT)
    try:
        returncode = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        pytest.fail(f"run.py still running 15 s after Ctrl-C:\n{log_text()}")
    assert returncode == 0, log_text()
    wait_for(
        lambda: not any(alive(pid) for pid in children) and not group_members(proc.pid),
        timeout=5,
        step=0.2,
        what="web, worker, beat and the edge agent to exit after Ctrl-C",
    )
    assert healthz(base) == (None, None), "the web server still answers after Ctrl-C"
