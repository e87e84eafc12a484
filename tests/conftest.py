"""Shared fixtures: an organisation with two sites and one person of every role.

``org`` builds, through the same services the pages use:
- region "Central" → cluster "Kampala" → sites "Block A" (code KLA) and "Block B" (code KLB);
- region "Eastern" → cluster "Jinja" → site "Jinja Town" (code JIN);
- people: ``admin`` (head office), ``regional`` (Central), ``cluster`` (Kampala),
  ``site_manager``/``billing``/``supervisor``/``agent`` (Block A only),
  ``outsider_agent`` (Jinja Town only), and ``customer`` who owns account on Block A.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field

import pytest

from mcoms.core import services as core_services
from mcoms.core.audit import acting_as
from mcoms.core.models import Cluster, Region, Site, User
from mcoms.core.roles import Role

PASSWORD = "correct-horse-battery"
T0 = dt.datetime(2026, 4, 1, 8, 0, tzinfo=dt.UTC)


@dataclass
class Org:
    central: Region
    eastern: Region
    kampala: Cluster
    jinja: Cluster
    block_a: Site
    block_b: Site
    jinja_town: Site
    users: dict[str, User] = field(default_factory=dict)

    def __getattr__(self, name: str) -> User:
        try:
            return self.__dict__["users"][name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def _site(cluster: Cluster, name: str, code: str) -> Site:
    return core_services.site_save(site=Site(cluster=cluster, name=name, code=code))


@pytest.fixture
def org(db) -> Org:
    with acting_as(label="test setup", channel="system"):
        central = Region.objects.create(name="Central", code="central")
        eastern = Region.objects.create(name="Eastern", code="eastern")
        kampala = Cluster.objects.create(region=central, name="Kampala", code="kla")
        jinja = Cluster.objects.create(region=eastern, name="Jinja", code="jin")
        org = Org(
            central=central,
            eastern=eastern,
            kampala=kampala,
            jinja=jinja,
            block_a=_site(kampala, "Block A", "kla"),
            block_b=_site(kampala, "Block B", "klb"),
            jinja_town=_site(jinja, "Jinja Town", "jin"),
        )

        def person(username: str, role: str, **scope) -> User:
            user = core_services.user_create(
                username=username,
                password=PASSWORD,
                role=role,
                first_name=username.title(),
                email=f"{username}@example.org",
                **scope,
            )
            org.users[username] = user
            return user

        person("admin", Role.ADMIN, is_staff=True)
        person("regional", Role.REGIONAL_MANAGER, regions=[central])
        person("cluster", Role.CLUSTER_MANAGER, clusters=[kampala])
        person("site_manager", Role.SITE_MANAGER, sites=[org.block_a])
        person("billing", Role.BILLING_OFFICER, sites=[org.block_a])
        person("supervisor", Role.FIELD_SUPERVISOR, sites=[org.block_a])
        person("agent", Role.FIELD_AGENT, sites=[org.block_a])
        person("outsider_agent", Role.FIELD_AGENT, sites=[org.jinja_town])
        person("customer", Role.CUSTOMER)
    return org


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with no API throttle counts."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def client_for(db):
    """Return a new test client signed in as the given user (one client per person)."""
    from django.test import Client

    def sign_in(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return sign_in


def chromium_available() -> bool:
    return shutil.which("chromium") is not None or shutil.which("/usr/bin/chromium") is not None


def pytest_configure(config):
    from django.conf import settings

    # Password hashing is deliberately slow; tests sign in hundreds of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.USSD_PIN_HASHER = "md5"
    # The API throttles count in the cache: a cache of this run's own, emptied before each test.
    import tempfile

    if settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": tempfile.mkdtemp(prefix="mcoms-test-cache-"),
            }
        }
    # Tasks run in-process in tests; a separate worker is exercised by its own test.
    from mcoms.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True


# --- Saying plainly what could not run here -----------------------------------------------
import os  # noqa: E402

from django.db import connection  # noqa: E402


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
    )
    skip_browser = pytest.mark.skip(
        reason="needs Chromium at /usr/bin/chromium: run `make browser-deps`"
    )
    for item in items:
        if "postgres" in item.keywords and not on_postgresql():
            item.add_marker(skip_pg)
        if "browser" in item.keywords and not os.path.exists("/usr/bin/chromium"):
            item.add_marker(skip_browser)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    terminalreporter.section("tests this machine could not run")
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"{count:4d} skipped: {reason}")


def pytest_sessionfinish(session, exitstatus):
    # CI provides everything, so a skip there hides something: fail the run.
    if os.environ.get("MCOMS_REQUIRE_ALL") and session.config.pluginmanager.get_plugin(
        "terminalreporter"
    ).stats.get("skipped"):
        session.exitstatus = 1
