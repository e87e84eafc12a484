"""deploy/compose.ops.yml (WAL archiving and the backup service) is valid over the main file."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.ops.conftest import ROOT

COMPOSE = shutil.which("docker-compose")

pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="needs docker-compose to validate docker-compose.yml: apt-get install docker-compose",
)


def config(tmp_path, *args):
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE")}
    env.update(SECRET_KEY="s" * 50, ALLOWED_HOSTS="mcoms.example.org", POSTGRES_PASSWORD="pw")
    env["MCOMS_ENV_FILE"] = str(env_file)  # no .env file may fill in a value by accident
    return subprocess.run(
        [
            COMPOSE,
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(env_file),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "-f",
            str(ROOT / "deploy" / "compose.ops.yml"),
            "config",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_ops_override_is_valid_and_archives_wal(tmp_path):
    assert config(tmp_path, "-q").returncode == 0
    full = config(tmp_path)
    assert full.returncode == 0, full.stderr
    text = full.stdout
    assert "archive_mode=on" in text
    assert "archive_command=test ! -f /wal-archive/%f && cp %p /wal-archive/%f" in text
    assert "/scripts/backup.sh" in text
    assert "DATABASE_URL: postgres://mcoms:pw@postgres:5432/mcoms" in text
    # The backup service is a tool (a profile): `up` does not start it.
    services = yaml.safe_load(text)["services"]
    assert services["backup"]["profiles"] == ["tools"]
    assert "wal-archive:/wal-archive:rw" in services["postgres"]["volumes"]


def test_ops_override_passes_the_settings_and_keeps_the_archive(tmp_path):
    full = config(tmp_path)
    assert full.returncode == 0, full.stderr
    services = yaml.safe_load(full.stdout)["services"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["READINGS_RETENTION_MONTHS"] == "24"
        assert "METRICS_TOKEN" in env
        assert env["MCOMS_PROFILE"] == "production"  # the main file's settings stay
    assert "readings-archive:/app/var:rw" in services["worker"]["volumes"]
