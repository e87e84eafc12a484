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
from decimal import Decimal

import pytest

from tests.ops.servers import (
    BIN,
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
CUSTOMERS, CHUNK = 16, 4


def build() -> str:
    """The data set (run in a process on the drill's database): returns "run_id user_id"."""
    from types import SimpleNamespace

    from billing import runs
    from mcoms.core import services as core_services
    from mcoms.core.audit import acting_as
    from mcoms.core.models import Cluster as SiteCluster
    from mcoms.core.models import Region, Site
    from mcoms.core.roles import Role
    from tests.billing.test_runs_fixtures import (
        FLAT,
        OCT,
        RUN_AT,
        customer,
        meter_of,
        package,
        tariff,
        usage,
    )

    with acting_as(label="drill setup", channel="system"):
        region = Region.objects.create(name="Central", code="central")
        cluster = SiteCluster.objects.create(region=region, name="Kampala", code="kla")
        site = core_services.site_save(site=Site(cluster=cluster, name="Block A", code="kla"))
        people = SimpleNamespace(
            admin=core_services.user_create(username="admin", password="x-drill-x-1",
                                            role=Role.ADMIN, is_staff=True),
            billing=core_services.user_create(username="billing", password="x-drill-x-1",
                                              role=Role.BILLING_OFFICER, sites=[site]),
        )
    shop = package("shop", tariff("flat", FLAT, people))
    for n in range(CUSTOMERS):
        usage(meter_of(customer(site, shop)), f"0.{n + 1:02d}")
    with acting_as(people.billing):
        run = runs.run_start(site=site, month=OCT, by=people.billing, now=RUN_AT, queue=False)
        runs.preview(run.pk)
    return f"{run.pk} {people.billing.pk}"


def _python(env: dict, code: str) -> str:
    done = subprocess.run([sys.executable, "-c", "import django; django.setup(); " + code],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


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
    try:
        cluster.sql("CREATE DATABASE drill")
        url = f"postgres://postgres@%2Ftmp:{cluster.port}/drill"
        env = process_env(url, "filesystem://localhost/", folder / "var",
                          BILLING_POST_CHUNK=str(CHUNK))
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=300)
        run_id, user_id = _python(
            env, "from tests.ops.test_drill_pg_restart import build; print(build())"
        ).split()
        def sql(statement: str, dbname: str = "drill") -> str:
            return cluster.sql(statement, dbname=dbname)

        previewed = sql(f"SELECT status, total FROM billing_billingrun WHERE id = {run_id}")
        assert previewed == f"previewed|{CUSTOMERS}"
        site_id = sql(f"SELECT site_id FROM billing_billingrun WHERE id = {run_id}")

        def progress() -> tuple[str, int, int]:
            row = sql(f"SELECT status, done, total FROM billing_billingrun WHERE id = {run_id}")
            status, done, total = row.split("|")
            return status, int(done), int(total)

        def worker_waits_for_the_site() -> bool:
            return sql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'drill' "
                       "AND wait_event_type = 'Lock'") == "1"

        gate = psycopg.connect(host="/tmp", port=cluster.port, user="postgres", dbname="drill")
        # Blocks the chunks' FOR UPDATE of the site, not the inserts that only refer to it.
        lock = "SELECT id FROM core_site WHERE id = %s FOR NO KEY UPDATE"
        gate.execute(lock, [site_id])  # chunks wait here

        worker = Worker(env, folder / "worker.log")
        worker.start()
        _python(env, "from billing import runs; from billing.models import BillingRun; "
                     "from mcoms.core.models import User; "
                     f"runs.post_start(run=BillingRun.objects.get(pk={run_id}), "
                     f"by=User.objects.get(pk={user_id}))")
        wait_for(worker_waits_for_the_site, 60, "the worker to reach its first chunk")
        gate.commit()  # one chunk through ...
        gate.execute(lock, [site_id])  # ... and the next waits behind this drill again
        wait_for(lambda: progress()[1] >= CHUNK, 20, "the first chunk's progress")
        wait_for(worker_waits_for_the_site, 20, "the worker to wait inside its next chunk")
        status, done, total = progress()
        assert status == "posting" and CHUNK <= done < total == CUSTOMERS, (status, done)

        cluster.restart("fast")  # the fault: every session cut, the worker's included
        with pytest.raises(psycopg.OperationalError):
            gate.execute("SELECT 1")
        gate.close()

        wait_for(lambda: progress()[0] in ("posted", "failed"), 60, "the run to finish")
    finally:
        if worker is not None:
            worker.stop()
    try:
        log = (folder / "worker.log").read_text(errors="replace")
        assert progress() == ("posted", CUSTOMERS, CUSTOMERS), log[-3000:]
        assert sql(f"SELECT error, held FROM billing_billingrun WHERE id = {run_id}") == "|0"
        # The restart cut the task; it was tried again and carried on.
        assert "Retry in" in log and "OperationalError" in log
        tries = sql("SELECT retries, started, finished FROM core_taskdelivery "
                    "WHERE task = 'billing.tasks.post_run' ORDER BY retries")
        # (The first try's end could not be written: the database was down then.)
        first, *_, last = tries.splitlines()
        assert first.startswith("0|1|") and last.endswith("|1|1") and last != first

        # Every customer invoiced exactly once, for what the preview priced.
        per_customer = sql(
            "SELECT count(DISTINCT i.customer_id), count(*), min(n), max(n) FROM ("
            " SELECT customer_id, count(*) AS n FROM billing_invoice GROUP BY customer_id) c "
            "JOIN billing_invoice i USING (customer_id)")
        assert per_customer == f"{CUSTOMERS}|{CUSTOMERS}|1|1"
        mismatched = sql(
            "SELECT count(*) FROM billing_billingrunitem it JOIN billing_invoice i "
            "ON i.id = it.invoice_id WHERE it.status <> 'invoiced' OR i.total <> it.total "
            f"OR it.run_id <> {run_id}")
        assert mismatched == "0"
        totals = sql(
            "SELECT (SELECT sum(total) FROM billing_invoice), "
            f"(SELECT sum(total) FROM billing_billingrunitem WHERE run_id = {run_id})"
        ).split("|")
        assert Decimal(totals[0]) == Decimal(totals[1]) > 0
        # One balanced ledger posting per invoice, its reference the invoice number.
        ledger = sql(
            "SELECT count(*), count(DISTINCT p.id) FILTER (WHERE p.reference = i.number) "
            "FROM billing_invoice i JOIN billing_posting p ON p.id = i.posting_id")
        assert ledger == f"{CUSTOMERS}|{CUSTOMERS}"
        assert sql("SELECT count(*) FROM billing_posting") == str(CUSTOMERS)
        unbalanced = sql("SELECT count(*) FROM (SELECT posting_id FROM billing_postingline "
                         "GROUP BY posting_id HAVING sum(amount) <> 0) u")
        assert unbalanced == "0"
        numbers = sql("SELECT string_agg(right(number, 5), ',' ORDER BY number) "
                      "FROM billing_invoice")
        assert numbers == ",".join(f"{n:05d}" for n in range(1, CUSTOMERS + 1))
    finally:
        cluster.stop()
    assert BIN and time.monotonic() - began < 150
