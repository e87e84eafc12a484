"""Point-in-time recovery as docs/operations.md describes it, on a PostgreSQL of its own.

A throw-away cluster (initdb, a free port, a temporary folder) runs with the compose
override's WAL settings (``archive_command=test ! -f ARCHIVE/%f && cp %p ARCHIVE/%f``);
a base backup is taken with ``pg_basebackup -Ft -z -X fetch``; rows are written before
and after a moment T; the cluster is thrown away; the base backup is unpacked, told
``restore_command`` and ``recovery_target_time = T`` with ``recovery.signal``, started —
and holds exactly the rows written before T.

Needs PostgreSQL's server programs (Debian: postgresql) and, when run as root, the
``postgres`` user to run them as.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from tests.ops.servers import BIN, RUN_AS, Cluster, free_port, needs_postgres_server

pytestmark = [pytest.mark.slow, needs_postgres_server]


@pytest.fixture
def root():
    # Not under pytest's tmp_path: its parents are closed to the postgres user.
    path = Path(tempfile.mkdtemp(prefix="ops-pitr-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_recovery_to_a_moment_keeps_what_was_written_before_it(root):
    archive, base, data, restored = (root / n for n in ("wal", "base", "data", "restored"))
    archive.mkdir()
    if RUN_AS:
        shutil.chown(root, "postgres")
        shutil.chown(archive, "postgres")
    cluster = Cluster(data, free_port(), root / "server.log")
    cluster.run(f"{BIN}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    wal = [
        "wal_level=replica",
        "archive_mode=on",
        f"archive_command='test ! -f {archive}/%f && cp %p {archive}/%f'",
        "archive_timeout=60",
    ]
    cluster.start(*wal)
    try:
        cluster.sql("CREATE TABLE ledger (n int, at timestamptz DEFAULT now())")
        cluster.sql("INSERT INTO ledger (n) SELECT generate_series(1, 100)")
        cluster.run(
            f"{BIN}/pg_basebackup",
            "-h",
            "/tmp",
            "-p",
            str(cluster.port),
            "-U",
            "postgres",
            "-D",
            str(base),
            "-Ft",
            "-z",
            "-X",
            "fetch",
            "-c",
            "fast",
        )
        cluster.sql("INSERT INTO ledger (n) SELECT generate_series(101, 150)")
        time.sleep(1.1)
        target = cluster.sql("SELECT now()")
        time.sleep(1.1)
        cluster.sql("DELETE FROM ledger")  # the mistake to undo
        segment = cluster.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        cluster.sql("SELECT pg_switch_wal()")  # archive the segment holding it all
        deadline = time.monotonic() + 30
        while not (archive / segment).exists():
            assert time.monotonic() < deadline, f"WAL segment {segment} was not archived"
            time.sleep(0.5)
        assert cluster.sql("SELECT count(*) FROM ledger") == "0"
    finally:
        cluster.stop()

    # Recovery: the newest base backup before the moment, the archive, a target time.
    restored.mkdir(mode=0o700)
    with tarfile.open(base / "base.tar.gz") as tar:
        tar.extractall(restored, filter="fully_trusted")
    with open(restored / "postgresql.auto.conf", "a") as conf:
        conf.write(f"restore_command = 'cp {archive}/%f %p'\n")
        conf.write(f"recovery_target_time = '{target}'\n")
        conf.write("recovery_target_action = 'promote'\n")
        conf.write("archive_mode = off\n")
    (restored / "recovery.signal").touch()
    if RUN_AS:
        subprocess.run(["chown", "-R", "postgres:postgres", str(restored)], check=True)
    again = Cluster(restored, free_port(), root / "restored.log")
    again.start()
    try:
        deadline = time.monotonic() + 60
        while again.sql("SELECT pg_is_in_recovery()") == "t":
            assert time.monotonic() < deadline, (root / "restored.log").read_text()[-2000:]
            time.sleep(0.5)
        assert again.sql("SELECT count(*), min(n), max(n) FROM ledger") == "150|1|150"
        assert dt.datetime.fromisoformat(
            again.sql("SELECT max(at) FROM ledger")
        ) <= dt.datetime.fromisoformat(target)
    finally:
        again.stop()
