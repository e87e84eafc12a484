"""REST endpoints for meters and gateways, scoped like the pages."""

from __future__ import annotations

from django.urls import include, path
from rest_framework import serializers, viewsets
from rest_framework.routers import DefaultRouter

from metering import selectors
from metering.models import Gateway, Meter


class MeterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Meter
        fields = [
            "id",
            "serial",
            "model",
            "phases",
            "site",
            "modbus_address",
            "gateway",
            "ct_ratio",
            "label",
            "status",
            "status_changed_at",
        ]
        read_only_fields = fields


class MeterViewSet(viewsets.ReadOnlyModelViewSet):
    """Meters on the caller's sites (lifecycle steps are taken through the pages)."""

    serializer_class = MeterSerializer

    def get_queryset(self):
        meters = selectors.meters_visible_to(self.request.user).order_by("serial")
        status = self.request.query_params.get("status")
        return meters.filter(status=status) if status else meters


class GatewaySerializer(serializers.ModelSerializer):
    class Meta:
        model = Gateway
        fields = ["id", "name", "site", "description", "meter_limit"]
        read_only_fields = fields


class GatewayViewSet(viewsets.ReadOnlyModelViewSet):
    """Gateways on the caller's sites."""

    serializer_class = GatewaySerializer

    def get_queryset(self):
        return selectors.gateways_visible_to(self.request.user).order_by("name")


router = DefaultRouter()
router.register("meters", MeterViewSet, basename="meter")
router.register("gateways", GatewayViewSet, basename="gateway")
urlpatterns = [path("", include(router.urls))]
