"""Management dashboards: organisation (or the person's scope), region, cluster, site, customer.

Each level shows, for a period of local days, the figures of :mod:`mcoms.dashboard.kpis`,
trend charts, the load profile and a table of its children (regions → clusters → sites →
customers → meters), every row linking one level down; every table downloads as CSV or
Excel (``?export=csv|xlsx&table=<name>``). A level outside the person's scope is a 404;
customers get a 403. Money figures need ``billing.view``.

The site's customer table is paginated (50 rows) and sorted in the database; htmx swaps
only the table when paging or sorting (``?part=customers``), without recomputing the
figures.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from billing import kpis as billing_kpis
from billing.collections.ageing import BUCKETS
from billing.collections.money import fmt
from customers import access
from customers.kpis import status_counts
from customers.models import Customer
from customers.selectors import customers_visible_to
from mcoms.core import clock
from mcoms.core.exports import FORMATS, export_response
from mcoms.core.models import Cluster, Region, Site
from mcoms.core.roles import Cap, Role
from mcoms.core.selectors import sites_visible_to
from mcoms.dashboard import charts
from mcoms.dashboard.kpis import PRESETS, figures, period_from, today_for
from mcoms.dashboard.tables import (
    Cell,
    Table,
    energy_table,
    figure_tables,
    kwh,
    num,
    plant_table,
    tally_head,
    tally_row,
    when,
)
from metering import kpis as meter_kpis
from metering.selectors import meters_visible_to, overdue_meters
from metering.steering.kpis import calin_states

PAGE_SIZE = 50
SORTS = {
    "account": "account_number",
    "name": "last_name",
    "status": "status",
    "balance": "-balance",
}


def _staff(request: HttpRequest) -> None:
    user = request.user
    if user.role == Role.CUSTOMER or not user.can(Cap.CUSTOMERS_VIEW):
        raise PermissionDenied


def _sites(request: HttpRequest, **where) -> list[Site]:
    sites = list(
        sites_visible_to(request.user)
        .filter(**where)
        .select_related("cluster__region")
        .order_by("name")
    )
    if where and not sites:
        raise Http404("Nothing of this in your scope.")
    return sites


def _link(name: str, *args, period=None) -> str:
    url = reverse(f"dashboard:{name}", args=args)
    return f"{url}?{period.query()}" if period else url


def _crumbs(level: str, obj, period) -> list[tuple[str, str]]:
    crumbs = [("Dashboard", _link("home", period=period))]
    site = obj if level == "site" else getattr(obj, "site", None) if level == "customer" else None
    cluster = obj if level == "cluster" else site.cluster if site else None
    region = obj if level == "region" else cluster.region if cluster else None
    if region is not None and level != "region":
        crumbs.append((region.name, _link("region", region.pk, period=period)))
    if cluster is not None and level != "cluster":
        crumbs.append((cluster.name, _link("cluster", cluster.pk, period=period)))
    if site is not None and level != "site":
        crumbs.append((site.name, _link("site", site.pk, period=period)))
    return crumbs


def _group_table(name, title, groups, link_name, figs, with_money) -> Table:
    table = Table(
        name, title, tally_head(title[:-1] if title.endswith("s") else title, ["Sites"], with_money)
    )
    for obj, (count, tally) in groups:
        cell = Cell(obj.name, url=_link(link_name, obj.pk, period=figs.period))
        table.rows.append(tally_row(cell, [num(count)], tally, with_money))
    return table


def _sites_table(sites, figs, with_money) -> Table:
    table = Table("sites", "Sites", tally_head("Site", ["Cluster", "Applicants"], with_money))
    statuses = status_counts([s.pk for s in sites])
    for s in sites:
        cell = Cell(s.name, url=_link("site", s.pk, period=figs.period))
        extra = [
            Cell(s.cluster.name),
            num(statuses.get(s.pk, {}).get(Customer.Status.APPLICANT, 0)),
        ]
        table.rows.append(tally_row(cell, extra, figs.per_site[s.pk], with_money))
    return table


def _grouped(sites, figs, key):
    counts: dict = {}
    for s in sites:
        obj = key(s)
        counts[obj] = counts.get(obj, 0) + 1
    totals = figs.group(sites, key)
    return [(obj, (counts[obj], totals[obj])) for obj in sorted(counts, key=lambda o: o.name)]


def _context(request, level: str, obj, sites: list[Site], title: str) -> dict:
    now = clock.now()
    period, error = period_from(request.GET, today_for(sites, now))
    with_money = request.user.can(Cap.BILLING_VIEW)
    figs = figures(sites, period, now=now, with_money=with_money)
    plant = plant_table(sites, figs)
    return {
        "level": level,
        "obj": obj,
        "title": title,
        "sites": sites,
        "period": period,
        "period_error": error,
        "presets": PRESETS,
        "figs": figs,
        "t": figs.total,
        "with_money": with_money,
        "crumbs": _crumbs(level, obj, period),
        "charts": charts.for_figures(figs),
        "ageing": _ageing(figs.total) if with_money else None,
        "profile_note": charts.profile_note(figs),
        "exports": [*figure_tables(figs), plant],
        "plant_table": plant,
        "plant_total": figs.plant_total if figs.plant else None,
    }


def _ageing(total) -> dict:
    """The arrears table: a row per bucket, a column per currency (narrow on a phone)."""
    ms = total.currencies
    rows = [
        {"label": label, "cells": [fmt(m.arrears.amounts[key], m.currency) for m in ms]}
        for key, label, _low, _high in BUCKETS
    ]
    return {
        "currencies": [m.currency for m in ms],
        "rows": rows,
        "overdue": [fmt(m.arrears.overdue, m.currency) for m in ms],
        "owing": [m.owing for m in ms],
    }


def _answer(request, context: dict, tables: list[Table], template="dashboard/level.html"):
    fmt_ = request.GET.get("export")
    if fmt_:
        if fmt_ not in FORMATS:
            return HttpResponseBadRequest("export must be csv or xlsx")
        wanted = request.GET.get("table", tables[0].name if tables else "")
        for table in [*tables, *context.get("exports", [])]:
            if table.name == wanted:
                slug = context["obj"].code if hasattr(context["obj"], "code") else "all"
                p = context["period"]
                filename = f"{table.name}-{slug}-{p.first:%Y%m%d}-{p.last:%Y%m%d}"
                return export_response(fmt_, filename, table.head, table.values())
        raise Http404("No such table.")
    context["tables"] = tables
    context["export_base"] = request.GET.urlencode()
    return render(request, template, context)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The organisation, or everything in the person's scope: regions and sites."""
    _staff(request)
    sites = _sites(request)
    user = request.user
    title = "Organisation" if user.role == Role.ADMIN or user.is_superuser else "Overview"
    context = _context(request, "org", None, sites, title)
    figs, with_money = context["figs"], context["with_money"]
    tables = []
    regions = _grouped(sites, figs, lambda s: s.cluster.region)
    tables.append(_group_table("regions", "Regions", regions, "region", figs, with_money))
    tables.append(_sites_table(sites, figs, with_money))
    meters = meters_visible_to(user)
    context["overdue"] = overdue_meters(meters, now=clock.now()).order_by("status_changed_at")[:20]
    return _answer(request, context, tables)


@login_required
def region(request: HttpRequest, pk: int) -> HttpResponse:
    _staff(request)
    obj = get_object_or_404(Region, pk=pk)
    sites = _sites(request, cluster__region=obj)
    context = _context(request, "region", obj, sites, obj.name)
    figs, with_money = context["figs"], context["with_money"]
    clusters = _grouped(sites, figs, lambda s: s.cluster)
    tables = [
        _group_table("clusters", "Clusters", clusters, "cluster", figs, with_money),
        _sites_table(sites, figs, with_money),
    ]
    return _answer(request, context, tables)


@login_required
def cluster(request: HttpRequest, pk: int) -> HttpResponse:
    _staff(request)
    obj = get_object_or_404(Cluster.objects.select_related("region"), pk=pk)
    sites = _sites(request, cluster=obj)
    context = _context(request, "cluster", obj, sites, obj.name)
    tables = [_sites_table(sites, context["figs"], context["with_money"])]
    return _answer(request, context, tables)


def _customer_rows(request, site: Site, period, *, page_only: bool):
    """The site's customers (sorted in the database), a page of them or all for a download."""
    sort = request.GET.get("sort", "account")
    plain = customers_visible_to(request.user).filter(site=site)
    with_money = request.user.can(Cap.BILLING_VIEW)
    customers = billing_kpis.with_balance(plain) if with_money and sort == "balance" else plain
    customers = customers.order_by(SORTS.get(sort, "account_number"), "account_number")
    page = None
    if page_only:
        paginator = Paginator(customers, PAGE_SIZE)
        paginator.count = plain.count()  # counted without the sort's join
        page = paginator.get_page(request.GET.get("page"))
    chosen = list(page.object_list if page else customers)
    ids = [c.pk for c in chosen]
    access.record(
        request,
        access.Action.SEARCH if page_only else access.Action.EXPORT,
        ids,
        what=f"dashboard customers of {site.code}"
        + ("" if page_only else f" ({request.GET.get('export')})"),
        query=access.query_text(request.GET, ("sort", "page", "start", "end", "period")),
    )
    energy = meter_kpis.customer_energy(ids, site, period.first, period.last)
    money = billing_kpis.customer_money(ids, site, period.first, period.last) if with_money else {}
    head = ["Account", "Name", "Status", "Energy kWh"]
    head += ["Billed", "Collected", "Balance"] if with_money else []
    table = Table("customers", "Customers", head)
    cur = site.currency
    for c in chosen:
        row = [
            Cell(c.account_number, url=_link("customer", c.pk, period=period)),
            Cell(f"{c.first_name} {c.last_name}"),
            Cell(c.get_status_display()),
            kwh(energy.get(c.pk, meter_kpis.ZERO)),
        ]
        if with_money:
            m = money.get(c.pk, {})
            for key in ("billed", "collected", "balance"):
                v = m.get(key, meter_kpis.ZERO)
                row.append(Cell(v, f"{cur} {fmt(v, cur)}", num=True))
        table.rows.append(row)
    return table, page, sort


@login_required
def site(request: HttpRequest, pk: int) -> HttpResponse:
    _staff(request)
    sites = _sites(request, pk=pk)
    obj = sites[0]
    now = clock.now()
    if request.GET.get("part") == "customers" or request.GET.get("table") == "customers":
        period, _ = period_from(request.GET, today_for(sites, now))
        export = bool(request.GET.get("export"))
        table, page, sort = _customer_rows(request, obj, period, page_only=not export)
        context = {"obj": obj, "period": period, "customers": table, "page": page, "sort": sort}
        if export:
            return _answer(request, context, [table])
        context.update(_table_links(request, obj, period))
        return render(request, "dashboard/_customers.html", context)
    context = _context(request, "site", obj, sites, obj.name)
    # The customer table comes in its own request (htmx, as soon as the page has loaded):
    # the figures do not wait for it, and paging or sorting it never recomputes them.
    keep = {k: request.GET[k] for k in ("sort", "page") if request.GET.get(k)}
    keep["part"] = "customers"
    base = reverse("dashboard:site", args=[obj.pk])
    context["customers_url"] = f"{base}?{context['period'].query()}&{urlencode(keep)}"
    return _answer(request, context, [])


def _table_links(request, site: Site, period) -> dict:
    base = reverse("dashboard:site", args=[site.pk])
    query = period.query()
    sort = request.GET.get("sort", "account")

    def url(**extra) -> str:
        params = {"sort": sort, **extra}
        return f"{base}?{query}&{urlencode(params)}"

    choices = [("account", "Account"), ("name", "Name"), ("status", "Status")]
    if request.user.can(Cap.BILLING_VIEW):
        choices.append(("balance", "Balance owed"))
    return {
        "sort_choices": choices,
        "page_url": url(),
        "base_url": f"{base}?{query}",
        "customers_export": {
            f: f"{base}?{query}&table=customers&export={f}&sort={sort}" for f in FORMATS
        },
    }


@login_required
def customer(request: HttpRequest, pk: int) -> HttpResponse:
    """One customer: their figures over the period and their meters, each linking to its page."""
    _staff(request)
    obj = get_object_or_404(customers_visible_to(request.user), pk=pk)
    access.record(request, access.Action.VIEW, [obj], what="dashboard customer page")
    site = obj.site
    now = clock.now()
    period, error = period_from(request.GET, today_for([site], now))
    with_money = request.user.can(Cap.BILLING_VIEW)
    meters = meter_kpis.customer_meters([obj.pk], site, period.first, period.last, now=now)
    money = billing_kpis.customer_money([obj.pk], site, period.first, period.last).get(obj.pk, {})
    trend = meter_kpis.customer_energy_trend(obj.pk, site, period.first, period.last, by=period.by)
    table = Table(
        "meters",
        "Meters",
        ["Serial", "Model", "Status", "Online", "Last reading", "Energy kWh", "Serving"],
    )
    calin = calin_states([m["meter"].pk for m in meters], now=now)
    for m in meters:
        meter = m["meter"]
        online = {True: "online", False: "offline", None: "not on a bus"}[m["online"]]
        if m["online"] is None and meter.pk in calin:
            online = f"{calin[meter.pk]} (Calin)"
        serving = "now" if m["current"] else f"until {m['until']:%Y-%m-%d}"
        table.rows.append(
            [
                Cell(meter.serial, url=reverse("metering:meter", args=[meter.pk])),
                Cell(meter.model),
                Cell(meter.get_status_display()),
                Cell(online),
                Cell(when(m["last_reading"], site.zone)),
                kwh(m["kwh"]),
                Cell(serving),
            ]
        )
    context = {
        "level": "customer",
        "obj": obj,
        "title": f"{obj.first_name} {obj.last_name}",
        "period": period,
        "period_error": error,
        "presets": PRESETS,
        "crumbs": _crumbs("customer", obj, period),
        "with_money": with_money,
        "money": {k: fmt(v, site.currency) for k, v in money.items()},
        "kwh": sum((m["kwh"] for m in meters), meter_kpis.ZERO),
        "chart": charts.energy_chart(period, trend, title="Energy used"),
        "exports": [energy_table(period, trend)],
        "currency": site.currency,
    }
    return _answer(request, context, [table], template="dashboard/customer.html")
