"""The edge API (``/api/v1/edge/…``), exactly as the shared contract fixes it.

Each gateway authenticates with ``Authorization: Bearer <token>``; bodies may be
gzip-compressed. Readings are parsed here rather than by DRF's parsers: the ingest
path reads the body once, decompresses it when asked, and hands plain lists to
``metering.ingest``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import uuid
import zlib

from django.db import IntegrityError, OperationalError, transaction
from django.urls import path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from metering import edge, ingest, tokens
from metering.models import EdgeBatch, Gateway

log = logging.getLogger(__name__)
MAX_READINGS = 5000
RETRY_AFTER_S = 30


class GatewayTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` → the gateway (as ``request.auth``)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme != self.keyword or not token.strip():
            raise exceptions.AuthenticationFailed("Send Authorization: Bearer <gateway token>.")
        gateway = tokens.gateway_for_token(token.strip())
        if gateway is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked gateway token.")
        return (GatewayUser(gateway), gateway)

    def authenticate_header(self, request):
        return self.keyword


class GatewayTokenScheme(OpenApiAuthenticationExtension):
    """Describes the gateway token in the OpenAPI schema (HTTP bearer)."""

    target_class = "metering.edge_api.GatewayTokenAuthentication"
    name = "gatewayToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The gateway's token, shown once when it was registered.",
        }


class GatewayUser:
    """Stands for the gateway in ``request.user`` (it is not a person)."""

    is_authenticated = True
    is_active = True
    pk = None

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def __str__(self) -> str:
        return f"gateway {self.gateway.name}"


class IsGateway(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, Gateway)


class EdgeView(APIView):
    authentication_classes = [GatewayTokenAuthentication]
    permission_classes = [IsGateway]

    def body_json(self, request: Request):
        """The request body as JSON (gunzipped when sent so); 400 when it is not JSON."""
        raw = request.body
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as exc:
                raise exceptions.ParseError(f"Body is not valid gzip: {exc}") from exc
        if _NUL_ESCAPE.search(raw):
            # PostgreSQL stores no NUL in text or jsonb (it answered 500); no agent sends one.
            raise exceptions.ParseError("Body holds a NUL character (\\u0000); nothing stored.")
        try:
            return json.loads(raw, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"Body is not JSON: {exc}") from exc

    def check_gateway(self, request: Request, body: dict) -> Gateway:
        gateway = request.auth
        if not isinstance(body, dict):
            raise exceptions.ParseError("Body must be a JSON object.")
        if "gateway" in body and body["gateway"] != gateway.name:
            raise exceptions.PermissionDenied(
                f"This token belongs to gateway {gateway.name!r}, not {body['gateway']!r}."
            )
        return gateway


_NUL_ESCAPE = re.compile(rb"\\u0000", re.IGNORECASE)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _content_hash(readings: list) -> str:
    canonical = json.dumps(readings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


ANSWER = inline_serializer(
    "ReadingsAnswer",
    {
        "batch_id": serializers.CharField(),
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "rejected": serializers.ListField(child=serializers.DictField()),
        "flagged": serializers.ListField(child=serializers.DictField(), required=False),
    },
)


class ConfigView(EdgeView):
    @extend_schema(
        tags=["edge"], summary="What this gateway should poll", responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request: Request) -> Response:
        return Response(edge.config_document(request.auth))


class ReadingsView(EdgeView):
    @extend_schema(
        tags=["edge"],
        summary="One batch of interval readings (at most 5,000)",
        request=inline_serializer(
            "ReadingBatch",
            {
                "batch_id": serializers.UUIDField(),
                "gateway": serializers.CharField(),
                "sent_at": serializers.DateTimeField(required=False),
                "readings": serializers.ListField(child=serializers.DictField()),
            },
        ),
        responses={
            200: ANSWER,
            400: OpenApiResponse(description="malformed body"),
            401: OpenApiResponse(description="token"),
            403: OpenApiResponse(description="gateway mismatch"),
            409: OpenApiResponse(description="same batch_id, different content"),
            413: OpenApiResponse(description="more than 5,000 readings"),
            503: OpenApiResponse(description="overloaded; retry after Retry-After"),
        },
    )
    def post(self, request: Request) -> Response:
        body = self.body_json(request)
        gateway = self.check_gateway(request, body)
        batch_id, readings = self._shape(body)
        if len(readings) > MAX_READINGS:
            return Response(
                {"detail": f"At most {MAX_READINGS} readings a batch; split it."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        digest = _content_hash(readings)
        known = EdgeBatch.objects.filter(batch_id=batch_id).first()
        if known is not None:
            return self._replay(known, gateway, digest)
        try:
            answer = self._ingest(gateway, batch_id, readings, digest)
        except IntegrityError:
            # The same batch arrived twice at once; the first one's answer stands.
            known = EdgeBatch.objects.filter(batch_id=batch_id).first()
            if known is None:
                raise
            return self._replay(known, gateway, digest)
        except OperationalError as exc:
            log.warning("readings from %s deferred: %s", gateway.name, exc)
            return Response(
                {"detail": "Busy; send this batch again later."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return Response(answer)

    @staticmethod
    def _shape(body: dict) -> tuple[uuid.UUID, list]:
        try:
            batch_id = uuid.UUID(str(body["batch_id"]))
        except (KeyError, ValueError) as exc:
            raise exceptions.ParseError("batch_id must be a UUID.") from exc
        readings = body.get("readings")
        if not isinstance(readings, list):
            raise exceptions.ParseError("readings must be a list.")
        return batch_id, readings

    @staticmethod
    def _replay(known: EdgeBatch, gateway: Gateway, digest: str) -> Response:
        if known.gateway_id != gateway.pk or known.content_hash != digest:
            return Response(
                {"detail": "This batch_id was already used for other content."},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(known.answer)

    @staticmethod
    def _ingest(gateway: Gateway, batch_id: uuid.UUID, readings: list, digest: str) -> dict:
        with (
            transaction.atomic(),
            audit.acting_as(label=f"gateway {gateway.name}", channel=AuditEvent.Channel.API),
        ):
            now = clock.now()
            outcome = ingest.ingest(gateway=gateway, readings=readings, now=now)
            answer = outcome.answer(str(batch_id))
            EdgeBatch.objects.create(
                batch_id=batch_id,
                gateway=gateway,
                content_hash=digest,
                answer=answer,
                received_at=now,
                readings=len(readings),
            )
            from metering import tasks

            tasks.after_ingest(outcome, now=now)
        return answer


class HeartbeatView(EdgeView):
    @extend_schema(
        tags=["edge"],
        summary="The gateway is alive; answers config version and commands",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        body = self.body_json(request)
        gateway = self.check_gateway(request, body)
        return Response(edge.heartbeat(gateway=gateway, body=body))


class CommandResultView(EdgeView):
    @extend_schema(
        tags=["edge"],
        summary="The outcome of a command the gateway ran",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request, command_id: str) -> Response:
        body = self.body_json(request)
        gateway = self.check_gateway(request, body)
        command = edge.command_by_wire_id(gateway, command_id)
        if command is None:
            raise exceptions.NotFound(f"No command {command_id} for this gateway.")
        # A bad body raises Django's ValidationError: the API's handler answers 400.
        edge.command_result(command=command, body=body)
        return Response({"id": command.wire_id, "status": body["status"]})


class DiscoveriesView(EdgeView):
    @extend_schema(
        tags=["edge"],
        summary="What answered a bus scan",
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        body = self.body_json(request)
        gateway = self.check_gateway(request, body)
        count = edge.discoveries_record(gateway=gateway, body=body)
        return Response({"recorded": count})


urlpatterns = [
    path("edge/config", ConfigView.as_view(), name="edge-config"),
    path("edge/readings", ReadingsView.as_view(), name="edge-readings"),
    path("edge/heartbeat", HeartbeatView.as_view(), name="edge-heartbeat"),
    path("edge/discoveries", DiscoveriesView.as_view(), name="edge-discoveries"),
    path(
        "edge/commands/<str:command_id>/result",
        CommandResultView.as_view(),
        name="edge-command-result",
    ),
]
