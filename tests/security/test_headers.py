"""Security headers on every answer, a policy the pages work with, and production's extras."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from django.test import Client
from django.urls import reverse

from tests.core.test_production import manage, production_values

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_carries_the_headers(org, client_for):
    for response in (Client().get(reverse("login")), client_for(org.agent).get("/field/")):
        csp = response["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "'unsafe-eval'" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        permissions = response["Permissions-Policy"]
        # The field app takes photos and records visit positions on our own origin.
        assert "camera=(self)" in permissions and "geolocation=(self)" in permissions
        assert "microphone=()" in permissions
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=\s*[\"']", re.IGNORECASE)
JS_URL = re.compile(r"=\s*[\"']\s*javascript:", re.IGNORECASE)


def test_no_template_has_inline_scripts_or_handlers():
    """The policy allows scripts from our static files only: inline code would not run."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.html"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(tracked) > 50
    found = []
    for name in tracked:
        text = (ROOT / name).read_text(encoding="utf-8")
        for pattern in (INLINE_SCRIPT, INLINE_HANDLER, JS_URL):
            found += [f"{name}: {m.group(0)}" for m in pattern.finditer(text)]
    assert not found, found


def test_the_api_docs_page_loads_its_script_from_a_file(org, client_for):
    html = client_for(org.admin).get(reverse("api-docs")).content.decode()
    assert not INLINE_SCRIPT.search(html), "Swagger UI's start-up script must not be inline"


PROBE = """
from django.test import Client
r = Client().get("/healthz", secure=True, headers={"host": "mcoms.example.org"})
for name in ("Strict-Transport-Security", "Content-Security-Policy", "Permissions-Policy",
             "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy",
             "Cross-Origin-Opener-Policy"):
    print(f"{name}: {r.headers.get(name)}")
plain = Client().get("/accounts/login/", headers={"host": "mcoms.example.org"})
print("plain", plain.status_code, plain.headers.get("Location"))
"""


def test_production_answers_carry_hsts_and_redirect_plain_http(tmp_path):
    # /healthz: an answer that needs no collected static files (its checks fail: no servers).
    values = production_values()
    result = manage(tmp_path, "shell", "-c", PROBE, MCOMS_PROFILE="production", **values)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Strict-Transport-Security: max-age=31536000; includeSubDomains; preload" in out
    assert "X-Frame-Options: DENY" in out
    assert "X-Content-Type-Options: nosniff" in out
    assert "Referrer-Policy: same-origin" in out
    assert "Cross-Origin-Opener-Policy: same-origin" in out
    assert "Content-Security-Policy: default-src 'self'" in out
    assert "camera=(self)" in out
    assert "plain 301 https://mcoms.example.org/accounts/login/" in out


def test_the_deployment_check_fails_production_without_two_factor(tmp_path):
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        MCOMS_PROFILE="production",
        MCOMS_REQUIRE_2FA="false",
        **production_values(),
    )
    assert result.returncode != 0
    assert "mcoms.security.W001" in result.stderr + result.stdout
