"""POST /api/v1/edge/plant: plant telemetry from a gateway, in the style of /edge/readings."""

from __future__ import annotations

import gzip
import json
import uuid

import pytest

from metering.plant.models import TelemetryBatch, TelemetrySample

pytestmark = pytest.mark.django_db
URL = "/api/v1/edge/plant"


def sample(ts="2026-04-04T15:15:00Z", channel="_sum/EssSoc", value=63):
    return {"ts": ts, "channel": channel, "value": value}


def body(*samples, batch_id=None, gateway="kla-block-a"):
    return {
        "batch_id": str(batch_id or uuid.uuid4()),
        "gateway": gateway,
        "sent_at": "2026-04-04T15:15:03Z",
        "samples": list(samples),
    }


def post(client, bus, data, token=None, gz=False):
    raw = json.dumps(data).encode()
    extra = {}
    if gz:
        raw, extra = gzip.compress(raw), {"HTTP_CONTENT_ENCODING": "gzip"}
    return client.post(URL, raw, content_type="application/json", **bus.headers(token), **extra)


def test_samples_are_stored_per_gateway_site_and_a_resent_batch_stores_nothing(client, bus):
    data = body(
        sample(),
        sample(channel="_sum/ProductionActiveEnergy", value=1_000_000),
        sample(ts="2026-04-04T15:20:00Z", value=62.5),
    )
    first = post(client, bus, data, gz=True)
    assert first.status_code == 200
    assert first.json() == {
        "batch_id": data["batch_id"],
        "accepted": 3,
        "duplicates": 0,
        "rejected": [],
    }
    rows = TelemetrySample.objects.filter(gateway=bus.gateway)
    assert rows.count() == 3
    assert {r.site_id for r in rows} == {bus.gateway.site_id}
    # The same batch again (the agent's blind retry): same answer, nothing new.
    again = post(client, bus, data)
    assert again.json() == first.json()
    assert TelemetrySample.objects.count() == 3
    # The same samples in a new batch: duplicates, counted, never stored twice.
    other = post(client, bus, body(sample(), sample(ts="2026-04-04T15:25:00Z", value=61)))
    assert other.json()["accepted"] == 1 and other.json()["duplicates"] == 1
    assert TelemetrySample.objects.count() == 4


def test_bad_samples_are_rejected_by_index_and_the_rest_kept(client, bus):
    data = body(
        sample(),
        sample(channel="EssSoc"),
        sample(ts="yesterday"),
        sample(value="63"),
        sample(channel="_sum/EssSoc", ts="2026-04-04T15:30:00Z", value=140),
    )
    answer = post(client, bus, data).json()
    assert answer["accepted"] == 1
    assert [r["index"] for r in answer["rejected"]] == [1, 2, 3, 4]
    assert "0-100" in answer["rejected"][3]["reason"]


def test_whole_request_errors_answer_as_the_contract_says(client, bus):
    data = body(sample())
    assert post(client, bus, data, token="mcg_wrong").status_code == 401
    assert post(client, bus, body(sample(), gateway="someone-else")).status_code == 403
    assert post(client, bus, {"samples": []}).status_code == 400
    assert post(client, bus, {"batch_id": str(uuid.uuid4()), "samples": {}}).status_code == 400
    too_many = body(*[sample(ts=f"2026-04-04T15:15:{n % 60:02d}Z") for n in range(5001)])
    assert post(client, bus, too_many).status_code == 413
    assert post(client, bus, data).status_code == 200
    changed = {**data, "samples": [sample(value=10)]}
    assert post(client, bus, changed).status_code == 409
    assert TelemetrySample.objects.count() == 1
    assert TelemetryBatch.objects.count() == 1


def test_the_endpoint_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/edge/plant" in paths
    operation = paths["/api/v1/edge/plant"]["post"]
    assert {"gatewayToken": []} in operation["security"]
    assert {"200", "400", "401", "403", "409", "413"} <= set(operation["responses"])
    # The existing edge endpoints are still there, unchanged in name.
    assert "/api/v1/edge/readings" in paths
