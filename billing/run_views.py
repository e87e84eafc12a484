"""Management pages: billing runs (start, preview, post, live progress) and invoices."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing import invoice_pdf, invoicing, runs
from billing.models import BillingRun, BillingRunItem, Invoice
from customers import access
from mcoms.core import clock
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to


def _runs(user):
    return BillingRun.objects.filter(site__in=sites_visible_to(user)).select_related("site")


def _invoices(user):
    return Invoice.objects.filter(site__in=sites_visible_to(user)).select_related(
        "customer", "site"
    )


class RunForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None)
    month = forms.DateField(
        widget=forms.DateInput(attrs={"type": "month"}),
        input_formats=["%Y-%m", "%Y-%m-%d"],
        help_text="The month to bill (it must be over in the site's time)",
    )

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites


class CreditNoteForm(forms.Form):
    amount = forms.CharField(
        required=False, help_text="Leave empty to credit all that is left of the invoice"
    )
    reason = forms.CharField(max_length=300)

    def clean_amount(self):
        raw = self.cleaned_data["amount"].strip().replace(",", "")
        if not raw:
            return None
        try:
            return Decimal(raw)
        except InvalidOperation as exc:
            raise ValidationError("Write the amount as a number, e.g. 12000.") from exc


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.BILLING_VIEW)
    sites = sites_visible_to(request.user)
    run_sites = sites.filter(pk__in=[s.pk for s in sites if can_on_site(
        request.user, Cap.BILLING_RUN, s.pk)])
    today = clock.now().date()
    form = RunForm(
        request.POST or None, sites=run_sites,
        initial={"month": runs.previous_month(today).strftime("%Y-%m")},
    )
    if request.method == "POST":
        require(request.user, Cap.BILLING_RUN)
        if form.is_valid():
            site = form.cleaned_data["site"]
            require(request.user, Cap.BILLING_RUN, site.pk)
            try:
                run = runs.run_start(
                    site=site, month=form.cleaned_data["month"], by=request.user
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                messages.success(request, f"Preview of {run} started.")
                return redirect("billing:run-detail", pk=run.pk)
    qs = _runs(request.user)
    if request.GET.get("site"):
        qs = qs.filter(site_id=request.GET["site"])
    context = {
        "page": Paginator(qs, 25).get_page(request.GET.get("page")),
        "form": form,
        "sites": sites,
        "params": request.GET,
        "can_run": bool(run_sites),
    }
    return render(request, "billing/runs.html", context)


def _run_context(request, run: BillingRun) -> dict:
    items = run.items.select_related("customer", "invoice")
    totals = {
        "ready": items.filter(status=BillingRunItem.Status.READY).count(),
        "held": items.filter(status=BillingRunItem.Status.HELD).count(),
        "invoiced": items.filter(status=BillingRunItem.Status.INVOICED).count(),
        "pending": items.filter(status=BillingRunItem.Status.PENDING).count(),
    }
    billed = [i.total for i in items if i.total is not None and i.status != "held"]
    return {
        "run": run,
        "totals": totals,
        "amount": sum(billed, Decimal(0)),
        "kwh": sum((i.kwh for i in items if i.kwh is not None and i.status != "held"),
                   Decimal(0)),
        "working": run.status in (BillingRun.Status.PENDING, BillingRun.Status.PREVIEWING,
                                  BillingRun.Status.POSTING),
        "percent": int(100 * run.done / run.total) if run.total else 0,
        "can_run": can_on_site(request.user, Cap.BILLING_RUN, run.site_id),
        "stalled": run.status in (BillingRun.Status.PREVIEWING, BillingRun.Status.POSTING)
        and runs.stale(run),
    }


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.BILLING_VIEW)
    run = get_object_or_404(_runs(request.user), pk=pk)
    context = _run_context(request, run)
    items = run.items.select_related("customer", "invoice").order_by("status", "customer")
    if request.GET.get("status"):
        items = items.filter(status=request.GET["status"])
    context["page"] = Paginator(items, 50).get_page(request.GET.get("page"))
    context["statuses"] = BillingRunItem.Status.choices
    context["params"] = request.GET
    return render(request, "billing/run_detail.html", context)


@login_required
def run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress panel alone; the run page polls it every 2 s while the run works."""
    require(request.user, Cap.BILLING_VIEW)
    run = get_object_or_404(_runs(request.user), pk=pk)
    response = render(request, "billing/run_progress.html", _run_context(request, run))
    if request.htmx and run.status not in (BillingRun.Status.PREVIEWING,
                                           BillingRun.Status.POSTING,
                                           BillingRun.Status.PENDING):
        response["HX-Refresh"] = "true"  # finished: reload the page with its items
    return response


@login_required
@require_POST
def run_post(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(_runs(request.user), pk=pk)
    require(request.user, Cap.BILLING_RUN, run.site_id)
    try:
        runs.post_start(run=run, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Posting started.")
    return redirect("billing:run-detail", pk=run.pk)


@login_required
@require_POST
def run_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Price the run again (accounts already invoiced are left alone)."""
    run = get_object_or_404(_runs(request.user), pk=pk)
    require(request.user, Cap.BILLING_RUN, run.site_id)
    try:
        runs.run_start(
            site=run.site, month=run.period_start, by=request.user,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Preview started again.")
    return redirect("billing:run-detail", pk=run.pk)


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.BILLING_VIEW)
    qs = _invoices(request.user)
    params = request.GET
    if params.get("site"):
        qs = qs.filter(site_id=params["site"])
    if params.get("period"):
        try:
            month = dt.datetime.strptime(params["period"], "%Y-%m").date()
        except ValueError:
            messages.error(request, "Choose the period as a month, e.g. 2026-10.")
        else:
            qs = qs.filter(period_start=month) | qs.filter(
                kind=Invoice.Kind.CREDIT_NOTE, issued_on__year=month.year,
                issued_on__month=month.month,
            )
    if params.get("q"):
        q = params["q"].strip()
        qs = qs.filter(customer__account_number__icontains=q) | qs.filter(
            customer__last_name__icontains=q
        ) | qs.filter(number__icontains=q)
    if params.get("customer"):
        qs = qs.filter(customer_id=params["customer"])
    context = {
        "page": Paginator(qs.order_by("-issued_on", "-id"), 25).get_page(params.get("page")),
        "sites": sites_visible_to(request.user),
        "params": params,
    }
    template = "billing/invoices.html#results" if request.htmx else "billing/invoices.html"
    return render(request, template, context)


@login_required
def invoice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.BILLING_VIEW)
    invoice = get_object_or_404(_invoices(request.user), pk=pk)
    can_credit = (
        invoice.kind == Invoice.Kind.INVOICE
        and can_on_site(request.user, Cap.BILLING_RUN, invoice.site_id)
    )
    form = CreditNoteForm(request.POST or None)
    if request.method == "POST":
        if not can_credit:
            raise PermissionDenied
        if form.is_valid():
            try:
                note = invoicing.credit_note_issue(
                    invoice=invoice, amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"], by=request.user,
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                messages.success(request, f"Credit note {note.number} issued.")
                return redirect("billing:invoice-detail", pk=note.pk)
    context = {
        "invoice": invoice,
        "lines": invoice.lines.all(),
        "summary": invoicing.summary(invoice),
        "credit_notes": invoice.credit_notes.all(),
        "left": invoice.total - invoicing.credited(invoice),
        "form": form,
        "can_credit": can_credit,
    }
    return render(request, "billing/invoice_detail.html", context)


@login_required
def invoice_download(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.BILLING_VIEW)
    invoice = get_object_or_404(_invoices(request.user), pk=pk)
    access.record(request, access.Action.EXPORT, [invoice.customer_id], what="invoice PDF")
    response = HttpResponse(invoice_pdf.render(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
    return response
