"""REST endpoints for customer accounts, scoped like the pages."""

from __future__ import annotations

from django.urls import include, path
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.routers import DefaultRouter

from customers import access, selectors, services
from customers.models import Customer, ServiceRequest
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "account_number",
            "first_name",
            "last_name",
            "phone",
            "alt_phone",
            "email",
            "site",
            "location",
            "latitude",
            "longitude",
            "package",
            "language",
            "critical_load",
            "status",
            "created_at",
        ]
        read_only_fields = ["id", "account_number", "status", "created_at", "site"]


class CustomerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Customer accounts the caller may see; staff who may edit can change details."""

    serializer_class = CustomerSerializer

    def get_queryset(self):
        customers = selectors.customer_search(
            self.request.user, self.request.query_params.get("q", "")
        )
        return customers.order_by("account_number")

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        rows = response.data.get("results", []) if isinstance(response.data, dict) else []
        rows = rows or (response.data if isinstance(response.data, list) else [])
        access.record(
            request,
            access.Action.EXPORT,
            [row["id"] for row in rows],
            what="API customer list",
            query=request.query_params.urlencode(),
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        access.record(request, access.Action.VIEW, [response.data["id"]], what="API customer")
        return response

    def perform_update(self, serializer):
        customer = serializer.instance
        if not can_on_site(self.request.user, Cap.CUSTOMERS_EDIT, customer.site_id):
            raise PermissionDenied("You may not change this account.")
        saved = services.customer_update(customer=customer, **serializer.validated_data)
        serializer.instance = saved.customer


class ServiceRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = ServiceRequest
        fields = [
            "id",
            "customer",
            "kind",
            "status",
            "description",
            "requested_package",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ServiceRequestViewSet(viewsets.ReadOnlyModelViewSet):
    """Service requests of the accounts the caller may see."""

    serializer_class = ServiceRequestSerializer

    def get_queryset(self):
        return selectors.requests_visible_to(self.request.user)


router = DefaultRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register("service-requests", ServiceRequestViewSet, basename="service-request")
urlpatterns = [path("", include(router.urls))]
