"""Fault drill: a Celery worker killed (SIGKILL) while it posts a billing run.

See docs/fault-drills.md. On a copy of the test database (PostgreSQL: the drill paces
the posting with the site's row lock), a Redis of our own as broker with a visibility
timeout of 3 s: a worker posts the previewed run in chunks of four; after one chunk, with
the worker inside the next, the worker and its pool process get SIGKILL — nothing is
acknowledged. The message waits in Redis' unacked set; a new worker gets it back once the
visibility timeout has passed and finishes the run. The task ran exactly once more, and
its effect happened once: every customer invoiced once, one posting each, totals as
previewed. A task that keeps killing its worker is stopped after TASK_WORKER_LOST_LIMIT.
"""

from __future__ import annotations

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
    RedisServer,
    Worker,
    drill_database,
    needs_redis_server,
    process_env,
    scratch_folder,
    wait_for,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    needs_redis_server,
]
VISIBILITY = 3  # seconds; an hour in production (BROKER_VISIBILITY_TIMEOUT)


@pytest.fixture
def folder():
    with scratch_folder("drill-kill-") as path:
        yield path


def test_a_killed_worker_s_task_runs_once_more_and_invoices_once(django_db_blocker, folder):
    import psycopg

    began = time.monotonic()
    redis = RedisServer(folder)
    first = second = None
    with drill_database(django_db_blocker, folder) as url:
        db = psycopg.connect(url, autocommit=True)

        def sql(statement: str) -> str:
            rows = db.execute(statement).fetchall()
            return "\n".join("|".join("" if v is None else str(v) for v in r) for r in rows)

        env = process_env(url, redis.url, folder / "var", BILLING_POST_CHUNK=str(CHUNK),
                          BROKER_VISIBILITY_TIMEOUT=str(VISIBILITY))
        try:
            redis.start()
            run_id, user_id, site_id = prepare(env)

            def progress() -> int:
                return int(sql(f"SELECT done FROM billing_billingrun WHERE id = {run_id}"))

            gate = SiteGate(psycopg.connect(url), site_id, url.rsplit("/", 1)[1])
            first = Worker(env, folder / "first.log")
            first.start()
            post_start(env, run_id, user_id)
            gate.one_chunk(progress)  # one chunk posted; the worker waits inside the next
            assert CHUNK <= progress() < CUSTOMERS

            first.kill()  # the fault: worker and pool process, at once
            assert redis.command("HLEN", "unacked") == "1"  # not acknowledged, not lost
            gate.connection.close()  # the dead worker's chunk gets the site, then rolls back

            # A worker looks for messages past their visibility timeout when it starts and
            # then every 100 s or so (kombu): start the new one once the timeout is over.
            time.sleep(VISIBILITY + 0.5)
            assert redis.command("HLEN", "unacked") == "1"
            second = Worker(env, folder / "second.log")
            second.start()
            wait_for(
                lambda: sql(f"SELECT status FROM billing_billingrun WHERE id = {run_id}")
                in ("posted", "failed"),
                60, "the new worker to finish the run",
            )
            wait_for(lambda: redis.command("HLEN", "unacked") == "0", 20,
                     "the task to be acknowledged at last")
        finally:
            for worker in (first, second):
                if worker is not None:
                    worker.stop()
            redis.stop()

        log = (folder / "second.log").read_text(errors="replace")
        state = sql(f"SELECT status, done, total, held, error FROM billing_billingrun "
                    f"WHERE id = {run_id}")
        assert state == f"posted|{CUSTOMERS}|{CUSTOMERS}|0|", log[-3000:]
        # Started twice (the killed worker's start never ended), finished once: once more.
        assert sql("SELECT retries, started, finished FROM core_taskdelivery "
                   "WHERE task = 'billing.tasks.post_run'") == "0|2|1"
        assert_posted_once(sql, run_id)
        db.close()
    assert time.monotonic() - began < 90
