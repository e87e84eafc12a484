"""The restore drill: back up, destroy, restore into a fresh database, compare.

The database is built as ``make run`` builds it (migrations, then the demo: sites,
customers, meters, readings in monthly partitions, invoices, payments, the ledger),
in a separate process, on the test server. ``scripts/backup.sh`` dumps it, the
database is dropped, ``scripts/restore.sh`` restores the dump into a new database,
and every table's row count and every ledger account's balance must match.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.ops.conftest import ROOT, drop, manage, psql, server_url

BACKUP = str(ROOT / "scripts" / "backup.sh")
RESTORE = str(ROOT / "scripts" / "restore.sh")


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(args),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


PARTITIONS = (
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'metering_reading'::regclass ORDER BY 1"
)


@pytest.mark.postgres
@pytest.mark.slow
def test_backup_destroy_restore_keeps_every_row_and_balance(tmp_path, scratch_databases):
    source, restored = "ops_drill", "ops_drill_restored"
    scratch_databases += [source, restored]
    for name in scratch_databases:
        drop(name)
    psql(f'CREATE DATABASE "{source}"')
    url = server_url(source)
    manage("migrate", "--noinput", url=url, var=tmp_path / "var")
    manage("seed_demo", url=url, var=tmp_path / "var")

    before = json.loads(manage("ops_fingerprint", url=url, var=tmp_path / "var").stdout)
    tables = before["tables"]
    # A realistic database: every kind of record the drill is about is there.
    for label in (
        "customers.customer",
        "metering.meter",
        "metering.reading",
        "billing.invoice",
        "payments.payment",
        "billing.postingline",
    ):
        assert tables[label] > 0, label
    assert any(v != "0" and v != "0.00" for v in before["ledger_balances"].values())
    partitions_before = psql(PARTITIONS, source)
    assert partitions_before

    backup = run(BACKUP, str(tmp_path / "backups"), DATABASE_URL=url)
    assert backup.returncode == 0, backup.stderr
    dump = backup.stdout.strip().splitlines()[-1]
    assert dump.endswith(".dump") and os.path.getsize(dump) > 0
    assert os.path.exists(dump + ".sha256")

    drop(source)  # the bad day
    assert psql(f"SELECT count(*) FROM pg_database WHERE datname = '{source}'") == "0"

    result = run(RESTORE, dump, server_url(restored))
    assert result.returncode == 0, result.stderr

    (tmp_path / "before.json").write_text(json.dumps(before))
    compare = manage(
        "ops_fingerprint",
        "--compare",
        str(tmp_path / "before.json"),
        url=server_url(restored),
        var=tmp_path / "var",
        check=False,
    )
    assert compare.returncode == 0, compare.stderr
    after = manage("ops_fingerprint", url=server_url(restored), var=tmp_path / "var")
    after = json.loads(after.stdout)
    assert after == before
    # The readings table comes back partitioned, month by month.
    assert psql(PARTITIONS, restored) == partitions_before
    # And the restored database is one the platform runs on: nothing left to migrate.
    plan = manage("migrate", "--check", url=server_url(restored), var=tmp_path / "var", check=False)
    assert plan.returncode == 0, plan.stdout + plan.stderr


@pytest.mark.postgres
def test_restore_refuses_an_existing_database_and_a_damaged_dump(tmp_path, scratch_databases):
    source, target = "ops_small", "ops_small_restored"
    scratch_databases += [source, target]
    for name in scratch_databases:
        drop(name)
    psql(f'CREATE DATABASE "{source}"')
    psql("CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3)", source)
    backup = run(BACKUP, str(tmp_path), DATABASE_URL=server_url(source))
    assert backup.returncode == 0, backup.stderr
    dump = backup.stdout.strip().splitlines()[-1]

    # Never over a database that exists (here: the source itself).
    refused = run(RESTORE, dump, server_url(source))
    assert refused.returncode != 0
    assert "already exists" in refused.stderr
    assert psql("SELECT count(*) FROM t", source) == "3"

    # A dump whose bytes changed since its checksum was taken is not restored.
    path = Path(dump)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    damaged = run(RESTORE, dump, server_url(target))
    assert damaged.returncode != 0
    assert "checksum mismatch" in damaged.stderr
    assert psql(f"SELECT count(*) FROM pg_database WHERE datname = '{target}'") == "0"


def test_backup_refuses_a_database_that_is_not_postgresql(tmp_path):
    sqlite = run(BACKUP, str(tmp_path), DATABASE_URL="sqlite:///var/mcoms.sqlite3")
    assert sqlite.returncode != 0
    assert "not PostgreSQL" in sqlite.stderr
    assert not list(tmp_path.iterdir())
    unset = run(BACKUP, str(tmp_path), DATABASE_URL="")
    assert unset.returncode != 0 and "DATABASE_URL is not set" in unset.stderr


@pytest.mark.postgres
def test_backup_keeps_only_the_newest(tmp_path, scratch_databases):
    source = "ops_keep"
    scratch_databases.append(source)
    drop(source)
    psql(f'CREATE DATABASE "{source}"')
    names = []
    for stamp in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z"):
        old = tmp_path / f"mcoms-{source}-{stamp}.dump"
        old.write_bytes(b"old")
        (tmp_path / f"{old.name}.sha256").write_text("x")
        names.append(old)
    for n, path in enumerate(names):  # oldest first by modification time
        os.utime(path, (1_700_000_000 + n, 1_700_000_000 + n))
    result = run(BACKUP, str(tmp_path), DATABASE_URL=server_url(source), BACKUP_KEEP="2")
    assert result.returncode == 0, result.stderr
    left = sorted(p.name for p in tmp_path.glob("*.dump"))
    assert len(left) == 2
    assert names[2].name in left and result.stdout.strip().endswith(left[-1])
    assert not (tmp_path / f"{names[0].name}.sha256").exists()
