"""Bad input against the REST API: schemathesis reads /api/schema/ and finds no server error.

The API is served for real (pytest-django's ``live_server``) with an organisation, a
gateway with meters and its token, customers, a service request. For every operation of
the schema schemathesis generates requests — valid ones and, in negative mode, ones the
schema forbids — and sends them authenticated the way each client is: the edge
endpoints with the gateway's bearer token, the rest as the head-office admin (HTTP
Basic, one of the API's authentication schemes). The one check: no answer is a 5xx.
"""

from __future__ import annotations

import base64

import hypothesis
import pytest
import schemathesis

from customers import services as customer_services
from customers.models import Customer, ServiceRequest
from mcoms.core.audit import acting_as
from tests import factories
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES = 30


@pytest.fixture
def api(live_server, org, bus):
    with acting_as(label="test setup"):
        customer = factories.customer(org.block_a, first_name="Fuzz")
        request = customer_services.service_request_create(
            customer=customer, kind=ServiceRequest.Kind.values[0], description="a fault"
        )
    Customer.objects.filter(pk=customer.pk).update(user=org.customer)

    def basic(username):
        return {
            "Authorization": "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
        }

    schema = schemathesis.openapi.from_url(live_server.url + "/api/schema/")
    schema.config.generation.update(max_examples=EXAMPLES)
    schema.auth_headers = {
        "staff": basic("admin"),
        "customer": basic("customer"),
        "gateway": {"Authorization": f"Bearer {bus.token}"},
    }
    # Generated ids mostly miss; each case is also sent for a record that exists.
    schema.real_ids = {
        "customers": customer.pk,
        "meters": bus.single.pk,
        "gateways": bus.gateway.pk,
        "service-requests": request.pk,
        "sites": org.block_a.pk,
    }
    return schema


schema = schemathesis.pytest.from_fixture("api")


def no_server_error(case, response) -> None:
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} answered {response.status_code}:\n"
        f"{response.text[:2000]}\n\nreproduce: {case.as_curl_command()}"
    )


@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_no_server_error(case, api):
    edge = case.path.startswith("/api/v1/edge/")
    people = ["gateway"] if edge else ["staff", "customer"]
    for who in people:
        no_server_error(case, case.call(headers=api.auth_headers[who]))
    real = api.real_ids.get(case.path.split("/")[3])
    if real is not None and "id" in (case.path_parameters or {}):
        case.path_parameters = {**case.path_parameters, "id": real}
        for who in people:
            no_server_error(case, case.call(headers=api.auth_headers[who]))
