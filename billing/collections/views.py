"""Staff pages: arrears ageing, customer statements, general-ledger export and month close."""

from __future__ import annotations

import csv
import datetime as dt
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing import ledger
from billing.collections import accounting, ageing
from billing.collections.forms import AsOfForm, CloseMonthForm, StatementForm
from billing.collections.models import CollectionNotice
from billing.collections.money import local_today, plain
from billing.collections.statements import as_csv, as_pdf, statement
from billing.models import BillingPolicy, SupplyRequest
from customers import access
from customers.selectors import customers_visible_to
from mcoms.core import clock
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to


def _today() -> dt.date:
    return timezone.localdate(clock.now())


def _as_of(request: HttpRequest) -> tuple[AsOfForm, dt.date]:
    form = AsOfForm(request.GET or None)
    as_of = _today()
    if form.is_bound and form.is_valid() and form.cleaned_data.get("as_of"):
        as_of = form.cleaned_data["as_of"]
    return form, as_of


# --- Arrears ageing ------------------------------------------------------------------------


@login_required
def arrears(request: HttpRequest) -> HttpResponse:
    """Ageing totals for every site the person sees, with totals per currency."""
    require(request.user, Cap.BILLING_VIEW)
    form, as_of = _as_of(request)
    reports = ageing.site_arrears(sites_visible_to(request.user), as_of)
    by_currency: dict[str, ageing.Buckets] = {}
    for report in reports:
        by_currency.setdefault(report.currency, ageing.Buckets()).merge(report.totals)
    context = {
        "form": form,
        "as_of": as_of,
        "reports": reports,
        "by_currency": sorted(by_currency.items()),
        "buckets": ageing.BUCKETS,
    }
    return render(request, "collections/arrears.html", context)


@login_required
def arrears_site(request: HttpRequest, site_id: int) -> HttpResponse:
    """One site's ageing, customer by customer."""
    require(request.user, Cap.BILLING_VIEW, site_id)
    site = get_object_or_404(sites_visible_to(request.user), pk=site_id)
    form, as_of = _as_of(request)
    report = ageing.site_arrears([site], as_of)[0]
    context = {
        "form": form,
        "as_of": as_of,
        "report": report,
        "buckets": ageing.BUCKETS,
        "policy": BillingPolicy.for_site(site),
        "open_disconnects": SupplyRequest.objects.filter(
            customer__site=site,
            action=SupplyRequest.Action.DISCONNECT,
            reason=SupplyRequest.Reason.ARREARS,
            status=SupplyRequest.Status.REQUESTED,
        ).select_related("customer"),
        "recent_notices": CollectionNotice.objects.filter(customer__site=site).select_related(
            "customer", "invoice"
        )[:20],
    }
    return render(request, "collections/arrears_site.html", context)


@login_required
def arrears_csv(request: HttpRequest) -> HttpResponse:
    """The ageing as CSV: one row per customer owing, for one site (``?site=``) or all seen."""
    require(request.user, Cap.BILLING_VIEW)
    sites = sites_visible_to(request.user)
    if request.GET.get("site"):
        try:
            site_id = int(request.GET["site"])
        except ValueError as exc:
            raise PermissionDenied from exc
        require(request.user, Cap.BILLING_VIEW, site_id)
        sites = sites.filter(pk=site_id)
    _form, as_of = _as_of(request)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        ["as_of", "site", "account", "name", "phone", "currency"]
        + [b[0] for b in ageing.BUCKETS]
        + ["overdue", "total", "open_invoices", "oldest_due"]
    )
    shown = []
    for report in ageing.site_arrears(sites, as_of):
        cur = report.currency
        for row in report.customers:
            c = row.customer
            shown.append(c.pk)
            w.writerow(
                [as_of.isoformat(), report.site.code, c.account_number, c.full_name, c.phone, cur]
                + [plain(a, cur) for a in row.buckets.in_order()]
                + [
                    plain(row.buckets.overdue, cur),
                    plain(row.buckets.total, cur),
                    row.invoices,
                    row.oldest_due.isoformat(),
                ]
            )
    query = access.query_text(request.GET, ("site", "as_of"))
    access.record(request, access.Action.EXPORT, shown, what="arrears CSV", query=query)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="arrears-{as_of}.csv"'
    return response


# --- Statements ----------------------------------------------------------------------------


def statement_response(request: HttpRequest, customer, template: str, extra: dict) -> HttpResponse:
    """A statement as a page, or as CSV / PDF with ``?format=``; shared with the portal."""
    today = local_today(customer.site)
    initial = {"start": today - dt.timedelta(days=90), "end": today}
    form = StatementForm(request.GET if "start" in request.GET else None, initial=initial)
    if form.is_bound and form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    else:
        start, end = initial["start"], initial["end"]
    st = None
    if not form.is_bound or form.is_valid():
        st = statement(customer, start, end)
        fmt = request.GET.get("format")
        name = f"statement-{customer.account_number}-{start}-{end}"
        action = access.Action.EXPORT if fmt in ("csv", "pdf") else access.Action.VIEW
        what = f"statement ({fmt})" if fmt in ("csv", "pdf") else "statement page"
        access.record(request, action, [customer], what=what, query=f"start={start} end={end}")
        if fmt == "csv":
            response = HttpResponse(as_csv(st), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
            return response
        if fmt == "pdf":
            response = HttpResponse(as_pdf(st), content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{name}.pdf"'
            return response
    query = f"start={start.isoformat()}&end={end.isoformat()}"
    context = {"form": form, "st": st, "customer": customer, "query": query, **extra}
    return render(request, template, context)


@login_required
def customer_statement(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.BILLING_VIEW)
    customer = get_object_or_404(customers_visible_to(request.user), pk=pk)
    require(request.user, Cap.BILLING_VIEW, customer.site_id)
    today = local_today(customer.site)
    extra = {
        "open_invoices": ageing.customer_open_invoices(customer, today),
        "balance": ledger.customer_balance(customer),
        "notices": customer.collection_notices.select_related("invoice")[:20],
        "staff": True,
    }
    return statement_response(request, customer, "collections/statement.html", extra)


# --- General ledger and month close ----------------------------------------------------------


@login_required
def ledger_home(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.LEDGER_CLOSE)
    sites = [
        s
        for s in sites_visible_to(request.user)
        if can_on_site(request.user, Cap.LEDGER_CLOSE, s.pk)
    ]
    if len(sites) == 1:
        return redirect("collections:ledger_site", site_id=sites[0].pk)
    return render(request, "collections/ledger_home.html", {"sites": sites})


def _ledger_site(request: HttpRequest, site_id: int):
    require(request.user, Cap.LEDGER_CLOSE, site_id)
    return get_object_or_404(sites_visible_to(request.user), pk=site_id)


@login_required
def ledger_site(request: HttpRequest, site_id: int) -> HttpResponse:
    """A site's months (open or closed), the trial balance at a month's end and the close."""
    site = _ledger_site(request, site_id)
    today = local_today(site)
    month_list = accounting.months(site, today)
    chosen = month_list[0].month if month_list else today.replace(day=1)
    error = ""
    if request.GET.get("month"):
        try:
            chosen = accounting.parse_month(request.GET["month"])
        except ValueError as exc:
            error = str(exc)
    first, last = accounting.month_bounds(chosen)
    rows, debits, credits = accounting.trial_balance(site, last)
    state = next((m for m in month_list if m.month == chosen), None)
    context = {
        "site": site,
        "months": month_list,
        "chosen": chosen,
        "first": first,
        "last": last,
        "rows": rows,
        "debits": debits,
        "credits": credits,
        "state": state,
        "closable": last < today and (state is None or state.closed is None),
        "close_form": CloseMonthForm(initial={"month": chosen.strftime("%Y-%m")}),
        "error": error,
    }
    return render(request, "collections/ledger_site.html", context)


@login_required
def gl_export(request: HttpRequest, site_id: int) -> HttpResponse:
    """Every posting line of the site in a month (``?month=2026-03``) or ``?start=&end=``."""
    site = _ledger_site(request, site_id)
    try:
        if request.GET.get("month"):
            start, end = accounting.month_bounds(accounting.parse_month(request.GET["month"]))
        else:
            start = dt.date.fromisoformat(request.GET.get("start", ""))
            end = dt.date.fromisoformat(request.GET.get("end", ""))
            if end < start:
                raise ValueError("The end date is before the start date.")
    except ValueError as exc:
        messages.error(request, f"Choose a month (2026-03) or a start and end date: {exc}")
        return redirect("collections:ledger_site", site_id=site.pk)
    response = StreamingHttpResponse(
        accounting.gl_csv_stream(site, start, end), content_type="text/csv; charset=utf-8"
    )
    name = f"general-ledger-{site.code}-{start}-{end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_POST
def period_close(request: HttpRequest, site_id: int) -> HttpResponse:
    site = _ledger_site(request, site_id)
    form = CloseMonthForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tick the box to confirm you have checked the trial balance.")
        month = request.POST.get("month", "")
        return redirect(f"{_url(site)}?month={month}")
    month = form.cleaned_data["month"]
    _first, last = accounting.month_bounds(month)
    if last >= local_today(site):
        messages.error(request, f"{month:%B %Y} has not ended yet; close it once it has.")
    else:
        try:
            ledger.period_close(site=site, month=month, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, f"{month:%B %Y} is closed on {site}: nothing more can be posted into it."
            )
    return redirect(f"{_url(site)}?month={month:%Y-%m}")


def _url(site) -> str:
    return reverse("collections:ledger_site", kwargs={"site_id": site.pk})
