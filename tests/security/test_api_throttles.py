"""REST API throttles: per person, per edge gateway, per address; 429 with Retry-After."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from mcoms.core.audit import acting_as
from mcoms.security.throttles import GatewayThrottle
from metering import services, tokens
from metering.edge_api import GatewayUser


def test_a_person_over_the_rate_waits_and_another_does_not(org, client_for, settings, now):
    settings.API_THROTTLE_USER = "3/minute"
    url = reverse("customer-list")
    regional = client_for(org.regional)
    assert [regional.get(url).status_code for _ in range(3)] == [200, 200, 200]
    throttled = regional.get(url)
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) == 60
    assert client_for(org.cluster).get(url).status_code == 200
    now.advance(seconds=61)
    assert regional.get(url).status_code == 200


def test_anonymous_requests_are_counted_per_address(db, settings, now):
    settings.API_THROTTLE_ANON = "2/minute"
    url = reverse("api-schema")
    one = Client(REMOTE_ADDR="203.0.113.9")
    assert [one.get(url).status_code for _ in range(2)] == [200, 200]
    assert one.get(url).status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.4").get(url).status_code == 200


def gateway_with_token(site, name):
    with acting_as(label="test setup"):
        gateway = services.gateway_create(site=site, name=name)
        return gateway, tokens.token_issue(gateway=gateway)


def test_each_gateway_has_its_own_rate(org, settings, now):
    settings.API_THROTTLE_GATEWAY = "2/minute"
    url = reverse("edge-config")
    gw1, token1 = gateway_with_token(org.block_a, "gw-one")
    _, token2 = gateway_with_token(org.block_a, "gw-two")
    one = {"HTTP_AUTHORIZATION": f"Bearer {token1}"}
    assert [Client().get(url, **one).status_code for _ in range(2)] == [200, 200]
    throttled = Client().get(url, **one)
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    two = {"HTTP_AUTHORIZATION": f"Bearer {token2}"}
    assert Client().get(url, **two).status_code == 200


def test_default_rates_never_slow_a_gateway_flushing_a_backlog(org, now):
    """A gateway back after days offline sends up to 50 batches per drain, a drain after
    every 10-second poll: 300 requests a minute, besides its heartbeats, for as long as the
    backlog lasts. The default rate lets all of it through."""
    gateway, _ = gateway_with_token(org.block_a, "gw-flush")
    factory = APIRequestFactory()
    refused = 0
    for _ in range(0, 600, 10):  # ten minutes of flushing
        for _ in range(50 + 1):  # a drain of 50 batches and a heartbeat
            request = Request(factory.post("/api/v1/edge/readings"))
            request.user = GatewayUser(gateway)
            if not GatewayThrottle().allow_request(request, None):
                refused += 1
        now.advance(seconds=10)
    assert refused == 0


def test_the_schema_documents_429(org, client_for):
    schema = client_for(org.admin).get(reverse("api-schema") + "?format=json").json()
    operation = schema["paths"]["/api/v1/edge/readings"]["post"]
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert all(
        "429" in op["responses"]
        for ops in schema["paths"].values()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    )


def test_the_default_cache_is_shared_between_processes(tmp_path):
    """Throttle counts made by one web process are seen by another (no server needed)."""
    from tests.core.test_production import manage

    write = "from django.core.cache import cache; cache.set('throttle-probe', 41, 60)"
    read = "from django.core.cache import cache; print(cache.get('throttle-probe'))"
    assert manage(tmp_path, "shell", "-c", write).returncode == 0
    result = manage(tmp_path, "shell", "-c", read)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "41"
