"""The billing data set and checks shared by the billing fault drills (no tests here).

A site with ``CUSTOMERS`` postpaid customers on a flat tariff, each with a meter and
October's hourly usage, and October's run previewed; :func:`assert_posted_once` checks a
posted run; :class:`SiteGate` paces a posting chunk by chunk with the site's row lock,
which every chunk takes (PostgreSQL).
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

from tests.ops.servers import ROOT, wait_for

CUSTOMERS, CHUNK = 16, 4


def build() -> str:
    """The data set (run in a process on the drill's database): "run_id user_id site_id"."""
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
    return f"{run.pk} {people.billing.pk} {site.pk}"


def assert_posted_once(sql, run_id: str, customers: int = CUSTOMERS) -> None:
    """Every customer of the run invoiced once, as previewed, one balanced posting each.

    ``sql(statement)`` answers as ``psql -At`` does: columns joined by ``|``, a row a line.
    """
    # Every customer invoiced exactly once, for what the preview priced.
    per_customer = sql(
        "SELECT count(DISTINCT i.customer_id), count(*), min(n), max(n) FROM ("
        " SELECT customer_id, count(*) AS n FROM billing_invoice GROUP BY customer_id) c "
        "JOIN billing_invoice i USING (customer_id)")
    assert per_customer == f"{customers}|{customers}|1|1"
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
    assert ledger == f"{customers}|{customers}"
    assert sql("SELECT count(*) FROM billing_posting") == str(customers)
    unbalanced = sql("SELECT count(*) FROM (SELECT posting_id FROM billing_postingline "
                     "GROUP BY posting_id HAVING sum(amount) <> 0) u")
    assert unbalanced == "0"
    numbers = sql("SELECT string_agg(right(number, 5), ',' ORDER BY number) "
                  "FROM billing_invoice")
    assert numbers == ",".join(f"{n:05d}" for n in range(1, customers + 1))


def run_python(env: dict, code: str) -> str:
    """Run ``code`` in a platform process (Django set up) with ``env``; its output."""
    done = subprocess.run([sys.executable, "-c", "import django; django.setup(); " + code],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def prepare(env: dict) -> tuple[str, str, int]:
    """:func:`build` in a process of its own: run id, billing officer id, site id."""
    run_id, user_id, site_id = run_python(
        env, "from tests.ops.billing_drill import build; print(build())"
    ).split()
    return run_id, user_id, int(site_id)


def post_start(env: dict, run_id: str, user_id: str) -> None:
    """The billing officer presses *Post* (in a process of its own: queued for a worker)."""
    run_python(
        env,
        "from billing import runs; from billing.models import BillingRun; "
        "from mcoms.core.models import User; "
        f"runs.post_start(run=BillingRun.objects.get(pk={run_id}), "
        f"by=User.objects.get(pk={user_id}))",
    )




class SiteGate:
    """Holds the site's row so posting chunks wait; lets them through one at a time.

    ``FOR NO KEY UPDATE`` blocks the chunks' ``FOR UPDATE`` of the site, not the inserts
    that only refer to the site (they take ``FOR KEY SHARE``).
    """

    LOCK = "SELECT id FROM core_site WHERE id = %s FOR NO KEY UPDATE"

    def __init__(self, connection, site_id: int, dbname: str) -> None:
        self.connection, self.site_id, self.dbname = connection, site_id, dbname
        self.connection.execute(self.LOCK, [site_id])

    def waiting(self) -> int:
        """How many sessions wait for this gate (the worker's chunk, nothing else)."""
        # Inside a transaction the activity view is read once: ask afresh each time.
        self.connection.execute("SELECT pg_stat_clear_snapshot()")
        return self.connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        ).fetchone()[0]

    def one_chunk(self, progress) -> None:
        """Let the waiting chunk through and hold the next; ``progress()`` gives done."""
        wait_for(lambda: self.waiting() >= 1, 60, "a posting chunk to wait for the site")
        before = progress()
        self.connection.commit()  # the waiting chunk takes the site ...
        self.connection.execute(self.LOCK, [self.site_id])  # ... the next queues behind us
        wait_for(lambda: progress() > before, 60, "the chunk's progress")
        wait_for(lambda: self.waiting() >= 1, 60, "the next chunk to wait for the site")
