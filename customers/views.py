"""Staff pages for customer accounts and service requests."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from customers import access, selectors, services
from customers.forms import (
    CustomerForm,
    RequestAssignForm,
    RequestStatusForm,
    ServiceRequestForm,
    StatusForm,
)
from customers.models import Customer, ServiceRequest
from mcoms.core.permissions import require
from mcoms.core.roles import FIELD, MANAGERS, Cap
from mcoms.core.selectors import can_on_site, sites_visible_to, staff_of_site

FIELD_AND_MANAGERS = set(FIELD | MANAGERS)


def _customer(request: HttpRequest, pk: int) -> Customer:
    return get_object_or_404(selectors.customers_visible_to(request.user), pk=pk)


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
def customer_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.CUSTOMERS_VIEW)
    customers = selectors.customer_search(request.user, request.GET.get("q", ""))
    if request.GET.get("status"):
        customers = customers.filter(status=request.GET["status"])
    if request.GET.get("site"):
        customers = customers.filter(site_id=request.GET["site"])
    page = Paginator(customers, 25).get_page(request.GET.get("page"))
    access.record(
        request,
        access.Action.SEARCH,
        page.object_list,
        what="customer list",
        query=access.query_text(request.GET),
    )
    context = {
        "page": page,
        "q": request.GET.get("q", ""),
        "statuses": Customer.Status.choices,
        "sites": sites_visible_to(request.user),
        "params": request.GET,
        "can_create": request.user.can(Cap.CUSTOMERS_EDIT),
    }
    template = "customers/list.html#results" if request.htmx else "customers/list.html"
    return render(request, template, context)


@login_required
def customer_create(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.CUSTOMERS_EDIT)
    sites = sites_visible_to(request.user)
    form = CustomerForm(request.POST or None, sites=sites)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        site = data.pop("site")
        require(request.user, Cap.CUSTOMERS_EDIT, site.pk)
        try:
            saved = services.customer_create(site=site, **data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            for warning in saved.warnings:
                messages.warning(request, warning)
            messages.success(request, f"Registered {saved.customer}.")
            return redirect("customers:detail", pk=saved.customer.pk)
    return render(request, "form.html", {"form": form, "title": "Register a customer"})


@login_required
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.CUSTOMERS_VIEW)
    customer = _customer(request, pk)
    access.record(request, access.Action.VIEW, [customer], what="customer page")
    context = {
        "customer": customer,
        "accesses": access.accesses_of(customer),
        "can_privacy": can_on_site(request.user, Cap.PRIVACY_EXPORT, customer.site_id),
        "history": customer.status_history.all(),
        "requests": customer.requests.all()[:20],
        "status_form": StatusForm(initial={"status": customer.status}),
        "can_edit": can_on_site(request.user, Cap.CUSTOMERS_EDIT, customer.site_id),
        "can_status": can_on_site(request.user, Cap.CUSTOMERS_STATUS, customer.site_id),
        "can_billing": can_on_site(request.user, Cap.BILLING_VIEW, customer.site_id),
    }
    return render(request, "customers/detail.html", context)


@login_required
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    require(request.user, Cap.CUSTOMERS_EDIT, customer.site_id)
    form = CustomerForm(request.POST or None, instance=customer)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "site"}
        try:
            saved = services.customer_update(customer=Customer.objects.get(pk=pk), **data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            for warning in saved.warnings:
                messages.warning(request, warning)
            messages.success(request, "Saved.")
            return redirect("customers:detail", pk=pk)
    return render(request, "form.html", {"form": form, "title": f"Edit {customer}"})


@login_required
def customer_status(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    require(request.user, Cap.CUSTOMERS_STATUS, customer.site_id)
    form = StatusForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.customer_set_status(customer=customer, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Status is now {form.cleaned_data['status']}.")
    return redirect("customers:detail", pk=pk)


@login_required
def request_create(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    require(request.user, Cap.CUSTOMERS_EDIT, customer.site_id)
    form = ServiceRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.service_request_create(customer=customer, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Request opened.")
            return redirect("customers:detail", pk=pk)
    return render(request, "form.html", {"form": form, "title": f"New request for {customer}"})


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.CUSTOMERS_VIEW)
    requests = selectors.requests_visible_to(request.user)
    status = request.GET.get("status", "open")
    if status:
        requests = requests.filter(status=status)
    page = Paginator(requests, 25).get_page(request.GET.get("page"))
    context = {"page": page, "statuses": ServiceRequest.Status.choices, "status": status}
    return render(request, "customers/requests.html", context)


@login_required
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    service_request = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
    site_id = service_request.customer.site_id
    form = RequestStatusForm(request.POST or None)
    if request.method == "POST":
        require(request.user, Cap.REQUESTS_HANDLE, site_id)
        if form.is_valid():
            try:
                services.service_request_transition(request=service_request, **form.cleaned_data)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, "Request updated.")
            return redirect("customers:request", pk=pk)
    context = {
        "req": service_request,
        "assignees": staff_of_site(service_request.customer.site, FIELD_AND_MANAGERS),
        "events": service_request.events.all(),
        "form": form,
        "next_statuses": sorted(services.REQUEST_TRANSITIONS.get(service_request.status, ())),
        "can_handle": can_on_site(request.user, Cap.REQUESTS_HANDLE, site_id),
    }
    return render(request, "customers/request_detail.html", context)


@login_required
@require_POST
def request_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Give the request to a field agent (or another staff member) of its site."""
    service_request = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
    require(request.user, Cap.REQUESTS_HANDLE, service_request.customer.site_id)
    form = RequestAssignForm(request.POST, site=service_request.customer.site)
    if not form.is_valid():
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return redirect("customers:request", pk=pk)
    try:
        services.service_request_assign(
            request=service_request,
            to=form.cleaned_data["assigned_to"],
            due_on=form.cleaned_data["due_on"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Assignment saved.")
    return redirect("customers:request", pk=pk)
