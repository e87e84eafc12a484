"""Staff pages: the meter inventory, each meter's lifecycle, gateways."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from customers.selectors import customers_visible_to
from mcoms.core import clock
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to
from metering import lifecycle, selectors, services
from metering.forms import AssignForm, MeterForm, ServeForm, StepForm
from metering.lifecycle import Status

# Steps done on site by field staff; the rest are inventory management.
FIELD_STEPS = {Status.INSTALLED, Status.COMMISSIONED, Status.RETEST_NEEDED}


def _errors(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


@login_required
def meter_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    meters = selectors.meters_visible_to(request.user)
    params = request.GET
    if params.get("q"):
        meters = meters.filter(Q(serial__contains=params["q"]) | Q(label__icontains=params["q"]))
    if params.get("status"):
        meters = meters.filter(status=params["status"])
    if params.get("site"):
        meters = meters.filter(site_id=params["site"])
    if params.get("overdue"):
        meters = selectors.overdue_meters(meters, now=clock.now())
    page = Paginator(meters, 30).get_page(params.get("page"))
    context = {
        "page": page,
        "statuses": Status.choices,
        "sites": sites_visible_to(request.user),
        "params": params,
        "now": clock.now(),
        "can_import": request.user.can(Cap.METERS_IMPORT),
        "can_edit": request.user.can(Cap.METERS_EDIT),
    }
    template = "metering/meter_list.html#results" if request.htmx else "metering/meter_list.html"
    return render(request, template, context)


@login_required
def meter_create(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.METERS_EDIT)
    form = MeterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            meter = services.meter_create(**form.cleaned_data)
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            messages.success(request, f"Added {meter} to the inventory.")
            return redirect("metering:meter", pk=meter.pk)
    return render(request, "form.html", {"form": form, "title": "Add a meter"})


@login_required
def meter_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    meter = get_object_or_404(selectors.meters_visible_to(request.user), pk=pk)
    steps = sorted(lifecycle.TRANSITIONS[meter.status] - {Status.ASSIGNED})
    if not can_on_site(request.user, Cap.METERS_EDIT, meter.site_id):
        steps = [s for s in steps if s in FIELD_STEPS]
    gateways = selectors.gateways_visible_to(request.user).filter(site=meter.site_id)
    context = {
        "meter": meter,
        "events": meter.events.select_related("by"),
        "assignments": meter.assignments.select_related("customer"),
        "customer": selectors.current_customer(meter),
        "overdue": meter.overdue(clock.now()),
        "assign_form": AssignForm(sites=sites_visible_to(request.user))
        if Status.ASSIGNED in lifecycle.TRANSITIONS[meter.status]
        and request.user.can(Cap.METERS_EDIT)
        else None,
        "step_form": StepForm(gateways=gateways, steps=steps) if steps else None,
        "serve_form": ServeForm() if meter.site_id and request.user.can(Cap.METERS_EDIT) else None,
    }
    return render(request, "metering/meter_detail.html", context)


@login_required
def meter_assign(request: HttpRequest, pk: int) -> HttpResponse:
    meter = get_object_or_404(selectors.meters_visible_to(request.user), pk=pk)
    require(request.user, Cap.METERS_EDIT)
    form = AssignForm(request.POST, sites=sites_visible_to(request.user))
    if form.is_valid():
        require(request.user, Cap.METERS_EDIT, form.cleaned_data["site"].pk)
        try:
            services.meter_assign(meter=meter, **form.cleaned_data)
        except ValidationError as exc:
            _errors(request, exc)
        else:
            messages.success(request, f"Assigned to address {form.cleaned_data['address']}.")
    else:
        messages.error(request, "Choose a site and an address between 2 and 247.")
    return redirect("metering:meter", pk=pk)


@login_required
def meter_step(request: HttpRequest, pk: int) -> HttpResponse:
    meter = get_object_or_404(selectors.meters_visible_to(request.user), pk=pk)
    gateways = selectors.gateways_visible_to(request.user).filter(site=meter.site_id)
    form = StepForm(request.POST, gateways=gateways)
    if not form.is_valid():
        messages.error(request, "Choose a valid step.")
        return redirect("metering:meter", pk=pk)
    status = form.cleaned_data["status"]
    needed = Cap.METERS_FIELD if status in FIELD_STEPS else Cap.METERS_EDIT
    require(request.user, needed, meter.site_id)
    try:
        services.meter_move(meter=meter, **form.cleaned_data)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(request, f"{meter} is now {Status(status).label.lower()}.")
    return redirect("metering:meter", pk=pk)


@login_required
def meter_serve(request: HttpRequest, pk: int) -> HttpResponse:
    meter = get_object_or_404(selectors.meters_visible_to(request.user), pk=pk)
    require(request.user, Cap.METERS_EDIT, meter.site_id)
    form = ServeForm(request.POST)
    if form.is_valid():
        customer = (
            customers_visible_to(request.user)
            .filter(account_number=form.cleaned_data["account_number"].strip().upper())
            .first()
        )
        if customer is None:
            messages.error(request, "No account with that number on your sites.")
        else:
            try:
                services.meter_serve_customer(
                    meter=meter, customer=customer, reason=form.cleaned_data["reason"]
                )
            except ValidationError as exc:
                _errors(request, exc)
            else:
                messages.success(request, f"{meter} now serves {customer}.")
    return redirect("metering:meter", pk=pk)


@login_required
def customer_meters(request: HttpRequest, customer_pk: int) -> HttpResponse:
    """The meters serving a customer: a fragment the customer page loads."""
    customer = get_object_or_404(customers_visible_to(request.user), pk=customer_pk)
    meters = selectors.meters_of_customer(customer)
    return render(request, "metering/customer_meters.html", {"meters": meters})


@login_required
def gateway_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    gateways = selectors.gateways_visible_to(request.user)
    return render(
        request,
        "metering/gateway_list.html",
        {
            "gateways": gateways,
            "can_edit": request.user.can(Cap.METERS_EDIT),
        },
    )


@login_required
def gateway_detail(request: HttpRequest, pk: int) -> HttpResponse:
    gateway = get_object_or_404(selectors.gateways_visible_to(request.user), pk=pk)
    meters = gateway.meters.order_by("modbus_address")
    return render(
        request,
        "metering/gateway_detail.html",
        {
            "gateway": gateway,
            "meters": meters,
            "on_bus": meters.filter(status__in=lifecycle.HOLDS_ADDRESS).count(),
            "can_edit": can_on_site(request.user, Cap.METERS_EDIT, gateway.site_id),
        },
    )
