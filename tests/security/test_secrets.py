"""Secrets come from the environment or from files, and none is committed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from django.conf import settings

from tests.core.test_production import manage, production_values

ROOT = Path(__file__).resolve().parents[2]

READ_ALL = """
import json
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in settings.SECRET_SETTINGS}))
"""


def test_every_secret_setting_reads_a_file_named_by_name_file(tmp_path):
    names = settings.SECRET_SETTINGS
    assert {"SECRET_KEY", "DATABASE_URL", "TWILIO_AUTH_TOKEN", "METRICS_TOKEN"} <= set(names)
    expected, env = {}, {}
    for name in names:
        value = f"from-a-file-{name.lower()}"
        if name == "DATABASE_URL":
            value = f"sqlite:///{tmp_path / 'from-file.sqlite3'}"
        elif name in ("CELERY_BROKER_URL", "CACHE_URL"):
            value = f"redis://127.0.0.1:9/{len(expected)}"
        secret = tmp_path / "secrets" / name.lower()
        secret.parent.mkdir(exist_ok=True)
        secret.write_text(value + "\n")  # as `echo value > file` writes it
        env[f"{name}_FILE"] = str(secret)
        expected[name] = value
    result = manage(tmp_path, "shell", "-c", READ_ALL, **env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def test_production_starts_with_its_secrets_in_files(tmp_path):
    values = production_values()
    env = {"ALLOWED_HOSTS": values.pop("ALLOWED_HOSTS"), "PAYMENT_BACKEND": "live"}
    values.pop("PAYMENT_BACKEND")
    for name, value in values.items():
        path = tmp_path / name.lower()
        path.write_text(value)
        env[f"{name}_FILE"] = str(path)
    result = manage(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING", MCOMS_PROFILE="production", **env
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_secret_set_twice_or_unreadable_stops_the_start(tmp_path):
    both = manage(tmp_path, "check", SECRET_KEY="x" * 50, SECRET_KEY_FILE=str(tmp_path / "none"))
    assert both.returncode != 0 and "Set SECRET_KEY or SECRET_KEY_FILE, not both" in both.stderr
    missing = manage(tmp_path, "check", METRICS_TOKEN_FILE=str(tmp_path / "none"))
    assert missing.returncode != 0 and "METRICS_TOKEN_FILE=" in missing.stderr


# --- nothing secret in the repository --------------------------------------------------------

# Shapes of real credentials: private keys, provider keys and tokens of known formats.
LEAKS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "Twilio account SID or key": re.compile(r"\b(?:AC|SK)[0-9a-f]{32}\b"),
    "Africa's Talking key": re.compile(r"\batsk_[0-9a-f]{64}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    # A password in a database or broker address (the tests' placeholders aside).
    "URL with a password": re.compile(
        r"\b(?:postgres|postgresql|redis|amqp|mysql)://[^:/\s@$]+:"
        r"(?!secret@|PASSWORD@|validation-only@)[^@\s$]{6,}@"
    ),
}


def tracked_files() -> list[str]:
    return subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()


def test_no_env_file_or_key_file_is_tracked():
    names = tracked_files()
    assert len(names) > 100
    env_files = [n for n in names if re.search(r"(^|/)\.env(\.|$)", n)]
    assert not env_files, env_files
    keys = [n for n in names if re.search(r"\.(pem|key|p12|pfx|jks)$|(^|/)id_(rsa|ed25519)", n)]
    assert not keys, keys


def test_no_tracked_file_holds_a_real_looking_secret():
    found = []
    for name in tracked_files():
        path = ROOT / name
        if path.suffix in {".png", ".jpg", ".ico", ".gz", ".pdf", ".xlsx", ".woff2"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for what, pattern in LEAKS.items():
            found += [f"{name}: {what}: {m.group(0)[:40]}" for m in pattern.finditer(text)]
    assert not found, found


def test_the_example_environment_and_compose_hold_no_secret_values():
    example = (ROOT / "deploy" / "env.example").read_text()
    for name in (*settings.SECRET_SETTINGS, "POSTGRES_PASSWORD", "TWILIO_ACCOUNT_SID"):
        for line in re.findall(rf"^#?\s*{name}=(.*)$", example, flags=re.MULTILINE):
            value = line.split("#")[0].strip()
            # Empty, or a shape to follow (an address with PASSWORD/service names in it).
            assert value == "" or "PASSWORD" in value or value.startswith("redis://redis"), (
                name,
                value,
            )
    compose = (ROOT / "docker-compose.yml").read_text()
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD"):
        for value in re.findall(rf"^\s*{name}:\s*(.+)$", compose, flags=re.MULTILINE):
            assert value.startswith("${"), (name, value)


def test_local_secrets_are_kept_out_of_git_and_the_image():
    gitignore = (ROOT / ".gitignore").read_text().split()
    dockerignore = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".env", ".env.*", "secrets/", "*.pem", "*.key"):
        assert pattern in gitignore, pattern
    for pattern in (".env", ".env.*", "secrets", "*.pem", "*.key"):
        assert pattern in dockerignore, pattern
    checked = subprocess.run(
        ["git", "check-ignore", ".env", ".env.production", "secrets/db", "deploy/tls.key"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert checked == [".env", ".env.production", "secrets/db", "deploy/tls.key"]
