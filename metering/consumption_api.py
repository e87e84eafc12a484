"""Consumption over the REST API: a meter's, a customer's or a site's, by interval to month.

``GET /api/v1/meters/{id}/consumption/``, ``/customers/{id}/consumption/`` and
``/sites/{id}/consumption/`` with ``from``, ``to`` and ``by``. Scoped like the pages:
a customer sees only their own account and its meters (and a meter only while it
served them); staff see their sites' meters, customers and sites; anything else is
404, as if it did not exist. Answers come from the rollups (``metering.consumption``).
"""

from __future__ import annotations

import datetime as dt

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from customers.models import Customer
from customers.selectors import customer_for_user, customers_visible_to
from mcoms.core import clock
from mcoms.core.roles import Role
from mcoms.core.selectors import sites_visible_to
from metering import consumption, selectors
from metering.models import MeterAssignment


class BucketSerializer(serializers.Serializer):
    """One period of usage."""

    start = serializers.DateTimeField(help_text="Start of the period (inclusive), local time")
    end = serializers.DateTimeField(help_text="End of the period (exclusive), local time")
    period = serializers.CharField(help_text="2026-04 by month, 2026-04-04 by day, else the end")
    kwh = serializers.DecimalField(max_digits=16, decimal_places=3)
    estimated_kwh = serializers.DecimalField(
        max_digits=16, decimal_places=3, help_text="Part of kwh spread over gaps or estimated"
    )


class TotalsSerializer(serializers.Serializer):
    """The sums of the buckets."""

    kwh = serializers.DecimalField(max_digits=18, decimal_places=3)
    estimated_kwh = serializers.DecimalField(max_digits=18, decimal_places=3)


class ConsumptionSerializer(serializers.Serializer):
    """The answer of a consumption endpoint."""

    subject = serializers.ChoiceField(choices=["meter", "customer", "site"])
    id = serializers.IntegerField()
    by = serializers.ChoiceField(choices=list(consumption.BY))
    timezone = serializers.CharField(help_text="The site's zone: days and months are local")
    # ``from`` is a Python keyword: declared as ``from_`` and renamed in get_fields.
    from_ = serializers.DateTimeField(help_text="Start of the first whole period")
    to = serializers.DateTimeField(help_text="End of the last whole period (exclusive)")
    unit = serializers.CharField(default="kWh")
    buckets = BucketSerializer(many=True)
    totals = TotalsSerializer()

    def get_fields(self):
        """The declared fields, ``from_`` named ``from``."""
        return {
            ("from" if name == "from_" else name): field
            for name, field in super().get_fields().items()
        }


PARAMETERS = [
    OpenApiParameter(
        "from",
        OpenApiTypes.STR,
        required=True,
        description="A date (2026-04-01, local midnight at the site) or an RFC 3339 datetime "
        "(without an offset: the site's local time).",
    ),
    OpenApiParameter(
        "to",
        OpenApiTypes.STR,
        description="A date (that whole day is included) or a datetime (exclusive). Default: now.",
    ),
    OpenApiParameter(
        "by",
        OpenApiTypes.STR,
        enum=list(consumption.BY),
        default="day",
        description="Bucket size. interval: single meter, at most 7 days; hour: at most 31 "
        "days; day: at most 366 days; month: at most 1,096 days. Days and months follow the "
        "site's calendar.",
    ),
]


def _schema(subject: str):
    return extend_schema(
        tags=["consumption"],
        summary=f"Consumption of a {subject} by interval, hour, day or month",
        parameters=[
            OpenApiParameter(
                "id", OpenApiTypes.INT, OpenApiParameter.PATH, description=f"The {subject}'s id"
            ),
            *PARAMETERS,
        ],
        responses={
            200: ConsumptionSerializer,
            400: OpenApiResponse(description="bad from/to/by, or a range too long for by"),
            404: OpenApiResponse(description=f"no such {subject} in your scope"),
        },
    )


def parse_moment(value: str, zone, *, end: bool = False) -> dt.datetime:
    """A date or datetime parameter as an aware UTC datetime (a date ``end`` includes its day)."""
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            if end:
                day += dt.timedelta(days=1)
            return consumption.local_midnight(day, zone)
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise exceptions.ValidationError(
            {"detail": f"{value!r} is neither a date (YYYY-MM-DD) nor an RFC 3339 datetime."}
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


class ConsumptionView(APIView):
    """What the three endpoints share: reading the range, answering."""

    subject = ""

    def range(self, request: Request, zone) -> tuple[str, dt.datetime, dt.datetime]:
        """``by``, ``from`` and ``to`` of the request (dates in ``zone``)."""
        by = request.query_params.get("by", consumption.DAY)
        raw_from = request.query_params.get("from")
        if not raw_from:
            raise exceptions.ValidationError({"detail": "from is required."})
        start = parse_moment(raw_from, zone)
        raw_to = request.query_params.get("to")
        end = parse_moment(raw_to, zone, end=True) if raw_to else clock.now()
        return by, start, end

    def answer(self, pk: int, compute) -> Response:
        """Run ``compute`` (a selector call) and serialise its usage; 400 on a bad range."""
        try:
            usage = compute()
        except consumption.RangeError as exc:
            raise exceptions.ValidationError({"detail": str(exc)}) from exc
        data = {
            "subject": self.subject,
            "id": pk,
            "by": usage.by,
            "timezone": str(usage.zone),
            "from": usage.start.astimezone(usage.zone),
            "to": usage.end.astimezone(usage.zone),
            "unit": "kWh",
            "buckets": usage.buckets,
            "totals": {"kwh": usage.kwh, "estimated_kwh": usage.estimated_kwh},
        }
        return Response(ConsumptionSerializer(data).data)


def _is_customer(user) -> bool:
    return user.role == Role.CUSTOMER and not user.is_superuser


class MeterConsumptionView(ConsumptionView):
    """A meter's consumption; a customer sees it only for the time it served them."""

    subject = "meter"

    @_schema("meter")
    def get(self, request: Request, pk: int) -> Response:
        user = request.user
        customer = None
        if _is_customer(user):
            customer = customer_for_user(user)
            served = MeterAssignment.objects.filter(customer=customer, meter__pk=pk)
            if customer is None or not served.exists():
                raise exceptions.NotFound("No such meter.")
            meter = served.select_related("meter__site", "meter__gateway").first().meter
        else:
            meter = selectors.meters_visible_to(user).filter(pk=pk).first()
            if meter is None:
                raise exceptions.NotFound("No such meter.")
        zone = consumption.UTC if meter.site is None else meter.site.zone
        by, start, end = self.range(request, zone)
        return self.answer(
            pk,
            lambda: consumption.meter_usage(meter, by=by, start=start, end=end, customer=customer),
        )


class CustomerConsumptionView(ConsumptionView):
    """A customer's consumption: their meters while assigned to them."""

    subject = "customer"

    @_schema("customer")
    def get(self, request: Request, pk: int) -> Response:
        customer: Customer | None = (
            customers_visible_to(request.user).select_related("site").filter(pk=pk).first()
        )
        if customer is None:
            raise exceptions.NotFound("No such customer.")
        by, start, end = self.range(request, customer.site.zone)
        return self.answer(
            pk, lambda: consumption.customer_usage(customer, by=by, start=start, end=end)
        )


class SiteConsumptionView(ConsumptionView):
    """All of a site's meters together."""

    subject = "site"

    @_schema("site")
    def get(self, request: Request, pk: int) -> Response:
        site = sites_visible_to(request.user).filter(pk=pk).first()
        if site is None:
            raise exceptions.NotFound("No such site.")
        by, start, end = self.range(request, site.zone)
        return self.answer(pk, lambda: consumption.site_usage(site, by=by, start=start, end=end))


urlpatterns = [
    path(
        "meters/<int:pk>/consumption/",
        MeterConsumptionView.as_view(),
        name="meter-consumption",
    ),
    path(
        "customers/<int:pk>/consumption/",
        CustomerConsumptionView.as_view(),
        name="customer-consumption",
    ),
    path("sites/<int:pk>/consumption/", SiteConsumptionView.as_view(), name="site-consumption"),
]
