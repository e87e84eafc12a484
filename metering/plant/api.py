"""``POST /api/v1/edge/plant``: plant telemetry from a gateway's edge agent (an additive v1
endpoint of the edge API; the contract's other endpoints are unchanged).

The agent polls OpenEMS Edge's REST API on the Pi and forwards the channels' values
in batches, in the style of ``/edge/readings``:

    {"batch_id": "<uuid>", "gateway": "kla-block-a", "sent_at": "…Z",
     "samples": [{"ts": "2026-04-04T15:15:00Z", "channel": "_sum/EssSoc", "value": 63}]}

Answer 200 ``{"batch_id", "accepted", "duplicates", "rejected": [{"index", "reason"}]}``.
A sample is a duplicate when the gateway already sent that (ts, channel); the same
``batch_id`` with the same content gets the same answer and stores nothing; with
other content 409; more than 5,000 samples 413; 400 malformed; 401/403 as the
other edge endpoints (the same gateway token authentication).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid

from django.db import IntegrityError, OperationalError, transaction
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from mcoms.core import clock
from metering.edge_api import RETRY_AFTER_S, EdgeView
from metering.models import Gateway
from metering.plant import services
from metering.plant.models import TelemetryBatch

log = logging.getLogger(__name__)
MAX_SAMPLES = 5000


def _digest(samples: list) -> str:
    canonical = json.dumps(samples, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class PlantTelemetryView(EdgeView):
    @extend_schema(
        tags=["edge"],
        summary="One batch of plant telemetry (OpenEMS channels; at most 5,000 samples)",
        description=__doc__,
        request=inline_serializer(
            "PlantBatch",
            {
                "batch_id": serializers.UUIDField(),
                "gateway": serializers.CharField(),
                "sent_at": serializers.DateTimeField(required=False),
                "samples": serializers.ListField(
                    child=inline_serializer(
                        "PlantSample",
                        {
                            "ts": serializers.DateTimeField(),
                            "channel": serializers.CharField(help_text="e.g. _sum/EssSoc"),
                            "value": serializers.FloatField(),
                        },
                    )
                ),
            },
        ),
        responses={
            200: inline_serializer(
                "PlantAnswer",
                {
                    "batch_id": serializers.CharField(),
                    "accepted": serializers.IntegerField(),
                    "duplicates": serializers.IntegerField(),
                    "rejected": serializers.ListField(child=serializers.DictField()),
                },
            ),
            400: OpenApiResponse(description="malformed body"),
            401: OpenApiResponse(description="token"),
            403: OpenApiResponse(description="gateway mismatch"),
            409: OpenApiResponse(description="same batch_id, different content"),
            413: OpenApiResponse(description="more than 5,000 samples"),
            503: OpenApiResponse(description="overloaded; retry after Retry-After"),
        },
    )
    def post(self, request: Request) -> Response:
        body = self.body_json(request)
        gateway = self.check_gateway(request, body)
        try:
            batch_id = uuid.UUID(str(body["batch_id"]))
        except (KeyError, ValueError) as exc:
            raise exceptions.ParseError("batch_id must be a UUID.") from exc
        samples = body.get("samples")
        if not isinstance(samples, list):
            raise exceptions.ParseError("samples must be a list.")
        if len(samples) > MAX_SAMPLES:
            return Response(
                {"detail": f"At most {MAX_SAMPLES} samples a batch; split it."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        digest = _digest(samples)
        known = TelemetryBatch.objects.filter(batch_id=batch_id).first()
        if known is not None:
            return self._replay(known, gateway, digest)
        try:
            with transaction.atomic():
                now = clock.now()
                outcome = services.telemetry_ingest(gateway=gateway, samples=samples, now=now)
                answer = outcome.answer(str(batch_id))
                TelemetryBatch.objects.create(
                    batch_id=batch_id,
                    gateway=gateway,
                    content_hash=digest,
                    answer=answer,
                    received_at=now,
                    samples=len(samples),
                )
        except IntegrityError:
            known = TelemetryBatch.objects.filter(batch_id=batch_id).first()
            if known is None:
                raise
            return self._replay(known, gateway, digest)
        except OperationalError as exc:
            log.warning("plant samples from %s deferred: %s", gateway.name, exc)
            return Response(
                {"detail": "Busy; send this batch again later."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return Response(answer)

    @staticmethod
    def _replay(known: TelemetryBatch, gateway: Gateway, digest: str) -> Response:
        if known.gateway_id != gateway.pk or known.content_hash != digest:
            return Response(
                {"detail": "This batch_id was already used for other content."},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(known.answer)


urlpatterns = [
    path("edge/plant", PlantTelemetryView.as_view(), name="edge-plant"),
]
