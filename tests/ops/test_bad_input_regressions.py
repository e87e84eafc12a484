"""Server errors the bad-input tests found, each pinned by a test of its own."""

from __future__ import annotations

import pytest

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    ["/api/v1/customers/", "/api/v1/meters/", "/api/v1/gateways/", "/api/v1/service-requests/"],
)
def test_huge_limit_and_offset_are_bounded_not_a_500(path, org, client_for):
    factories.customer(org.block_a)
    client = client_for(org.admin)
    huge = 2**63  # one more than the database's biggest integer
    page = client.get(path, {"limit": huge})
    assert page.status_code == 200
    assert page.json()["count"] >= 0
    assert "limit=1000" in (page.json()["next"] or "limit=1000")
    past = client.get(path, {"offset": huge, "limit": 5})
    assert past.status_code == 200
    assert past.json()["results"] == []
