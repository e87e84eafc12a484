"""docker-compose.yml is valid, has every service, and fails loudly without its secrets.

Needs Debian's ``docker-compose`` (only to validate; no Docker engine is used).
CI installs it; elsewhere these tests skip and say so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = shutil.which("docker-compose")
SECRETS = ("SECRET_KEY", "ALLOWED_HOSTS", "POSTGRES_PASSWORD")

pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="needs docker-compose to validate docker-compose.yml: apt-get install docker-compose",
)


@pytest.fixture
def compose(tmp_path):
    """Run docker-compose on our file with only the variables a test passes."""
    env_file = tmp_path / "empty.env"  # no .env file may fill in a secret by accident
    env_file.write_text("")
    base = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("COMPOSE")}

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                COMPOSE,
                "--project-directory",
                str(ROOT),
                "-f",
                str(ROOT / "docker-compose.yml"),
                "--env-file",
                str(env_file),
                *args,
            ],
            cwd=ROOT,
            env={"MCOMS_ENV_FILE": str(env_file), **base, **env},
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    return run


def filled() -> dict[str, str]:
    return {
        "SECRET_KEY": "a-long-random-secret-for-validation-only-0123456789",
        "ALLOWED_HOSTS": "mcoms.example.org",
        "POSTGRES_PASSWORD": "validation-only",
    }


def test_compose_file_is_valid(compose):
    result = compose("config", "-q", **filled())
    assert result.returncode == 0, result.stderr


def test_compose_has_every_service_in_the_production_profile(compose):
    result = compose("config", "--services", **filled())
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {"web", "worker", "beat", "postgres", "redis"} <= services

    full = compose("config", **filled())
    assert full.returncode == 0, full.stderr
    text = full.stdout
    assert "image: postgres:16" in text
    assert "gunicorn mcoms.wsgi" in text
    assert "django_celery_beat.schedulers:DatabaseScheduler" in text
    assert text.count("MCOMS_PROFILE: production") >= 4  # migrate, web, worker, beat
    assert "DATABASE_URL: postgres://mcoms:validation-only@postgres:5432/mcoms" in text
    assert "CELERY_BROKER_URL: redis://redis:6379/0" in text


def test_the_edge_api_has_a_pool_of_its_own_with_less_cpu_weight(compose):
    full = compose("config", **filled())
    assert full.returncode == 0, full.stderr
    services = yaml.safe_load(full.stdout)["services"]
    edge, web = services["edge"], services["web"]
    assert "gunicorn mcoms.wsgi" in " ".join(edge["command"])
    assert edge["environment"]["MCOMS_PROFILE"] == "production"
    assert edge["cpu_shares"] < web.get("cpu_shares", 1024)
    published = {str(p.get("published", p)) if isinstance(p, dict) else p for p in edge["ports"]}
    assert any("8001" in p for p in published)


def test_provider_keys_in_the_env_file_reach_the_apps_containers(compose, tmp_path):
    app_env = tmp_path / "app.env"
    app_env.write_text("AFRICASTALKING_API_KEY=at-key-for-validation\nCALIN_USER=calin-user\n")
    full = compose("config", MCOMS_ENV_FILE=str(app_env), **filled())
    assert full.returncode == 0, full.stderr
    # web, worker and beat (and the one-shot migrate) all get it
    assert full.stdout.count("AFRICASTALKING_API_KEY: at-key-for-validation") >= 3
    assert "CALIN_USER: calin-user" in full.stdout


@pytest.mark.parametrize("missing", SECRETS)
def test_a_missing_secret_stops_compose_with_a_message(compose, missing):
    values = filled()
    del values[missing]
    result = compose("config", "-q", **values)
    assert result.returncode != 0
    assert missing in result.stderr


def test_env_example_lists_every_variable_compose_and_settings_read():
    example = (ROOT / "deploy" / "env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    in_compose = set(
        re.findall(r"\$\{([A-Z][A-Z0-9_]*)[:}-]", (ROOT / "docker-compose.yml").read_text())
    )
    in_settings = set(
        re.findall(
            r"\benv(?:_bool|_list)?\(\s*\"([A-Z][A-Z0-9_]*)\"",
            (ROOT / "mcoms/settings.py").read_text(),
        )
    )
    assert {"SECRET_KEY", "POSTGRES_PASSWORD"} <= in_compose
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "MCOMS_PROFILE"} <= in_settings
    assert not in_compose - listed, f"not in deploy/env.example: {sorted(in_compose - listed)}"
    assert not in_settings - listed, f"not in deploy/env.example: {sorted(in_settings - listed)}"
