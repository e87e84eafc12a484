"""Fault drill: PostgreSQL restarted while a billing run posts. See docs/fault-drills.md.

A throw-away PostgreSQL cluster, migrated, holds a site with 16 postpaid customers and
their October usage, previewed. A real Celery worker posts the run in chunks of four
(``BILLING_POST_CHUNK``). The drill paces it with the site's row lock, which each chunk
takes: holding it, the drill lets exactly one chunk through, then — with the worker
waiting inside its second chunk — restarts PostgreSQL (``pg_ctl restart -m fast``: every
session cut). The run finishes by itself: every customer invoiced once, one balanced
ledger posting per invoice, totals as previewed, numbers without gaps, progress 16 of 16,
status posted.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.ops.billing_drill import (
    CHUNK,
    CUSTOMERS,
    SiteGate,
    assert_posted_once,
    post_start,
    prepare,
)
from tests.ops.servers import (
    ROOT,
    Cluster,
    Worker,
    free_port,
    needs_postgres_server,
    process_env,
    scratch_folder,
    wait_for,
)

pytestmark = [pytest.mark.slow, needs_postgres_server]


@pytest.fixture
def folder():
    with scratch_folder("drill-pg-") as path:
        yield path


def test_a_billing_run_survives_a_postgresql_restart_without_duplicates(folder):
    import psycopg

    began = time.monotonic()
    cluster = Cluster(folder / "data", free_port(), folder / "server.log")
    cluster.init()
    cluster.start("fsync=off")
    worker = None

    def sql(statement: str) -> str:
        return cluster.sql(statement, dbname="drill")

    try:
        cluster.sql("CREATE DATABASE drill")
        url = f"postgres://postgres@%2Ftmp:{cluster.port}/drill"
        env = process_env(url, "filesystem://localhost/", folder / "var",
                          BILLING_POST_CHUNK=str(CHUNK))
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=300)
        run_id, user_id, site_id = prepare(env)

        def progress() -> int:
            return int(sql(f"SELECT done FROM billing_billingrun WHERE id = {run_id}"))

        gate = SiteGate(
            psycopg.connect(host="/tmp", port=cluster.port, user="postgres", dbname="drill"),
            site_id, "drill",
        )
        worker = Worker(env, folder / "worker.log")
        worker.start()
        post_start(env, run_id, user_id)
        gate.one_chunk(progress)  # one chunk posted, the worker waits inside the next
        status, done = sql(f"SELECT status, done FROM billing_billingrun WHERE id = {run_id}") \
            .split("|")
        assert status == "posting" and CHUNK <= int(done) < CUSTOMERS, (status, done)

        cluster.restart("fast")  # the fault: every session cut, the worker's included
        with pytest.raises(psycopg.OperationalError):
            gate.connection.execute("SELECT 1")
        gate.connection.close()

        wait_for(
            lambda: sql(f"SELECT status FROM billing_billingrun WHERE id = {run_id}")
            in ("posted", "failed"),
            60, "the run to finish",
        )
    finally:
        if worker is not None:
            worker.stop()
    try:
        log = (folder / "worker.log").read_text(errors="replace")
        state = sql(f"SELECT status, done, total, held, error FROM billing_billingrun "
                    f"WHERE id = {run_id}")
        assert state == f"posted|{CUSTOMERS}|{CUSTOMERS}|0|", log[-3000:]
        # The restart cut the task; it was tried again and carried on.
        assert "Retry in" in log and "OperationalError" in log
        tries = sql("SELECT retries, started, finished FROM core_taskdelivery "
                    "WHERE task = 'billing.tasks.post_run' ORDER BY retries")
        # (The first try's end could not be written: the database was down then.)
        first, *_, last = tries.splitlines()
        assert first.startswith("0|1|") and last.endswith("|1|1") and last != first
        assert_posted_once(sql, run_id)
    finally:
        cluster.stop()
    assert time.monotonic() - began < 150
