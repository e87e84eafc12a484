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


def test_nul_characters_in_the_ussd_and_sms_callbacks_are_not_a_500(org):
    """PostgreSQL cannot store NUL in text: the callbacks drop it (found on PostgreSQL)."""
    from django.test import Client

    from notifications.selfservice import messages
    from notifications.selfservice.models import InboundSms

    messages.install_templates()
    client = Client()
    ussd = client.post(
        "/ussd/africastalking/",
        {
            "sessionId": "ATUid_\x00nul",
            "phoneNumber": "+256772000\x00001",
            "text": "1\x00",
            "serviceCode": "*384\x00#",
            "networkCode": "\x00",
        },
    )
    assert ussd.status_code == 200
    assert ussd.content.decode().startswith(("CON ", "END "))
    sms = client.post(
        "/sms/africastalking/",
        {"id": "ATXid_\x001", "from": "+256772000001", "to": "\x00", "text": "BAL\x00"},
    )
    assert sms.status_code == 200
    assert InboundSms.objects.get().provider_id == "ATXid_1"
    only_nul = client.post("/sms/africastalking/", {"id": "\x00", "from": "+256772000001"})
    assert only_nul.status_code == 400


def test_a_customer_asking_for_a_meter_id_beyond_any_integer_gets_404(org, client_for):
    """``/meters/<id>/consumption/`` as a customer: an id past 2**63 was a 500 on SQLite."""
    from customers.models import Customer

    mine = factories.customer(org.block_a)
    Customer.objects.filter(pk=mine.pk).update(user=org.customer)
    response = client_for(org.customer).get(
        f"/api/v1/meters/{2**63}/consumption/", {"from": "2026-04-01"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/v1/edge/heartbeat", '{"\\u0000": null}'),
        (
            "/api/v1/edge/readings",
            '{"batch_id": "6f1c1d8e-3f0a-4a61-9d1e-0c5d2f1b7a10", "readings": [{"x": "\\u0000"}]}',
        ),
        ("/api/v1/edge/discoveries", '{"found": [{"serial": "1\\U0000"}]}'),
    ],
)
def test_a_nul_in_an_edge_body_is_a_400_not_a_500(path, body, client, bus):
    """PostgreSQL's jsonb refuses \\u0000 (the heartbeat answered 500 there)."""
    from metering.models import Gateway

    response = client.post(path, body, content_type="application/json", **bus.headers())
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert Gateway.objects.get(pk=bus.gateway.pk).last_heartbeat is None
