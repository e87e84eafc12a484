"""Field task fixtures: Block A's field people with phones, a second agent, the message templates.

``org`` (tests/conftest.py) gives ``agent`` and ``supervisor`` on Block A and
``outsider_agent`` on Jinja Town; here they get phone numbers, and ``agent2`` joins Block A,
so assignment by load has someone to choose between. The steering ``grid`` fixture (a
CHINT meter serving Bosco on Block A) is wired in for the field-job tests.
"""

from __future__ import annotations

import datetime as dt

import pytest

from mcoms.core import services as core_services
from mcoms.core.audit import acting_as
from mcoms.core.roles import Role
from notifications import catalog
from tests.conftest import PASSWORD
from tests.metering.steering.conftest import grid  # noqa: F401 - the steering grid, wired in

# Tuesday 7 April 2026, 10:00 in Kampala (UTC+3).
NOW = dt.datetime(2026, 4, 7, 7, 0, tzinfo=dt.UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def field(org):
    """Phones for Block A's field people, a second agent, and the catalogue's templates."""
    with acting_as(label="test setup", channel="system"):
        org.users["agent2"] = core_services.user_create(
            username="agent2",
            password=PASSWORD,
            role=Role.FIELD_AGENT,
            first_name="Agnes",
            last_name="Second",
            sites=[org.block_a],
        )
        catalog.install_defaults()
    for name, phone in (
        ("agent", "+256770000101"),
        ("agent2", "+256770000102"),
        ("supervisor", "+256770000103"),
        ("outsider_agent", "+256770000104"),
    ):
        user = org.users[name]
        user.phone = phone
        user.save(update_fields=["phone"])
    return org


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path
