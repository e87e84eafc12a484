"""Throw-away servers and processes for the operations tests and the fault drills.

- :class:`Cluster`: a PostgreSQL cluster of its own (initdb on a free port, a temporary
  folder), run as the ``postgres`` user when the tests run as root;
- :class:`RedisServer`: ``redis-server`` on a free port, nothing saved to disk;
- :class:`Worker`: a real ``celery worker`` process on this worktree's code;
- :func:`drill_database`: the test database copied for processes to share (a file on
  SQLite, a database made from the test database as template on PostgreSQL), with this
  process's ORM pointed at it while the drill runs.

Where a program is missing, the tests that need it skip with a reason naming it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
REDIS = shutil.which("redis-server")
CELERY = shutil.which("celery", path=str(Path(sys.executable).parent)) or shutil.which("celery")


def _runner() -> list[str] | None:
    if BIN is None:
        return None
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return ["runuser", "-u", "postgres", "--"]


RUN_AS = _runner()
needs_postgres_server = pytest.mark.skipif(
    RUN_AS is None,
    reason="needs PostgreSQL's server programs (/usr/lib/postgresql/*/bin) and a postgres user",
)
needs_redis_server = pytest.mark.skipif(
    REDIS is None, reason="needs redis-server (Debian: redis-server)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float, what: str, step: float = 0.1):
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


@contextlib.contextmanager
def scratch_folder(prefix: str):
    """A temporary folder the postgres user may enter (pytest's tmp_path parents are closed)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Cluster:
    """A PostgreSQL cluster in ``data``, listening on a Unix socket in /tmp at ``port``."""

    def __init__(self, data: Path, port: int, log: Path) -> None:
        self.data, self.port, self.log = data, port, log
        self.options = ""

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*RUN_AS, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 or not check, f"{args[0]}: {done.stderr}{done.stdout}"
        return done

    def init(self) -> None:
        if RUN_AS:
            shutil.chown(self.data.parent, "postgres")
        self.run(f"{BIN}/initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8")

    def start(self, *settings: str) -> None:
        self.options = " ".join(
            [f"-p {self.port}", "-k /tmp", "-c listen_addresses=''", *[f"-c {s}" for s in settings]]
        )
        self.run(f"{BIN}/pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options,
                 "-w", "-t", "60", "start")

    def restart(self, mode: str = "fast") -> None:
        """Stop (every session is cut) and start again with the same settings."""
        self.run(f"{BIN}/pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options,
                 "-m", mode, "-w", "-t", "60", "restart")

    def stop(self) -> None:
        self.run(f"{BIN}/pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def sql(self, statement: str, dbname: str = "postgres") -> str:
        return self.run(f"{BIN}/psql", "-h", "/tmp", "-p", str(self.port), "-U", "postgres",
                        "-d", dbname, "-XAtc", statement).stdout.strip()

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@/{dbname}?host=/tmp&port={self.port}"


class RedisServer:
    """``redis-server`` on a free port, persisting nothing; stop and start it at will."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, 10, "redis-server to answer")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def command(self, *args: str) -> str:
        cli = shutil.which("redis-cli")
        assert cli, "needs redis-cli"
        return subprocess.run([cli, "-p", str(self.port), *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()


def process_env(database_url: str, broker_url: str, var: Path, **extra: str) -> dict[str, str]:
    """The environment of a platform process on this worktree's code, its own var/ folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_TASK_ALWAYS_EAGER",)}
    env.update(
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="mcoms.settings",
        MCOMS_PROFILE="development",
        MCOMS_VAR_DIR=str(var),
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=broker_url,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class Worker:
    """A real ``celery worker`` (one pool process) in its own process group."""

    def __init__(self, env: dict[str, str], log: Path, *, beat: bool = False) -> None:
        self.env, self.log, self.beat = env, log, beat
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        args = [CELERY or "celery", "-A", "mcoms", "worker", "--pool=prefork", "--concurrency=1",
                "--without-gossip", "--without-mingle", "--loglevel=INFO",
                "-n", f"drill-{uuid.uuid4().hex[:6]}@%h"]
        if self.beat:  # beat in the worker, with the database's schedules
            args += ["-B", "-s", str(self.log.with_suffix(".beat"))]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def ready(self) -> bool:
        return "ready." in self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the worker and its pool process at once: nothing acknowledges."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        """Warm shutdown; its log's end is printed (pytest shows it when the test fails)."""
        print(f"--- {self.log.name} ---\n{self.tail()}")
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


# --- The test database, shared with processes ----------------------------------------------


@contextlib.contextmanager
def drill_database(django_db_blocker, folder: Path):
    """Yield a DATABASE_URL holding the migrated test database, this process pointed at it.

    SQLite: the in-memory test database is copied into a file. PostgreSQL: a database is
    created from the test database as template, and dropped afterwards. Either way the
    test database itself is left as it was.
    """
    from django.contrib.contenttypes.models import ContentType
    from django.db import connections

    conn = connections["default"]
    saved = dict(conn.settings_dict)
    with django_db_blocker.unblock():
        if conn.vendor == "sqlite":
            path = folder / "drill.sqlite3"
            conn.ensure_connection()
            target = sqlite3.connect(path)
            conn.connection.backup(target)
            target.close()
            keep = conn.connection  # an in-memory test database lives while one connection does
            conn.connection = None
            conn.settings_dict["NAME"] = str(path)
            url = f"sqlite:///{path}"
            dbname = None
        else:
            keep = None
            dbname = f"drill_{uuid.uuid4().hex[:10]}"
            for c in connections.all():
                c.close()
            _admin(saved, f'CREATE DATABASE "{dbname}" TEMPLATE "{saved["NAME"]}"')
            conn.settings_dict["NAME"] = dbname
            url = _pg_url(saved, dbname)
        ContentType.objects.clear_cache()
        try:
            yield url
        finally:
            conn.close()
            conn.settings_dict.clear()
            conn.settings_dict.update(saved)
            if keep is not None:
                conn.connection = keep
            if dbname:
                _admin(saved, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            ContentType.objects.clear_cache()


def _pg_url(s: dict, dbname: str) -> str:
    from urllib.parse import quote

    auth = quote(s["USER"] or "postgres")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{dbname}"


def _admin(s: dict, statement: str) -> None:
    import psycopg

    with psycopg.connect(_pg_url(s, "postgres"), autocommit=True) as c:
        c.execute(statement)


@contextlib.contextmanager
def orm_on(settings_dict: dict):
    """Point this process's default connection at another database for a while."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connections

    conn = connections["default"]
    saved = dict(conn.settings_dict)
    conn.close()
    conn.settings_dict.update(settings_dict)
    ContentType.objects.clear_cache()
    try:
        yield conn
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)
        ContentType.objects.clear_cache()
