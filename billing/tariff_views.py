"""Billing's management pages for tariffs (versions, maker-checker, a sample month) and charges.

Tariffs: staff who see billing (``Cap.BILLING_VIEW``) or manage packages see the list
and each tariff's versions; those who manage packages and tariffs
(``Cap.PACKAGES_MANAGE``) propose new terms, and a *different* such person approves or
rejects them (the services refuse the proposer; the page says so).

Charges: a customer's connection fees, deposits and other charges with their
instalments; ``Cap.BILLING_VIEW`` to see, ``Cap.BILLING_RUN`` on the customer's site to
add or cancel, and ``Cap.MONEY_APPROVE`` to return a closed account's deposit.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing import charges, ledger, tariff_services
from billing.models import Charge, Tariff, TariffVersion
from billing.tariff_terms import DAY_NAMES, TariffError, Terms, parse_terms
from billing.tariffs import Calendar, DemandInterval, InForce, Interval, price_period
from customers.models import Customer
from customers.selectors import customers_visible_to
from mcoms.core import clock
from mcoms.core.models import PublicHoliday, Site
from mcoms.core.permissions import require
from mcoms.core.roles import Cap

# --- Reading terms ---------------------------------------------------------------------------


def _minutes(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def _days(days: frozenset[str]) -> str:
    order = [*DAY_NAMES, "weekday", "holiday", "everyday"]
    return ", ".join(d for d in order if d in days)


def describe_terms(terms: Terms, currency: str) -> list[dict]:
    """The terms as headed lists of plain sentences, for people to read."""
    sections: list[dict] = []
    fixed = [f"{f.name}: {currency} {f.amount} a month" for f in terms.fixed]
    sections.append({"title": "Fixed charges", "rows": fixed or ["None."]})
    energy: list[str] = []
    if terms.flat_rate is not None:
        energy.append(f"Flat rate: {currency} {terms.flat_rate} per kWh")
    floor = Decimal(0)
    for block in terms.blocks:
        span = f"{floor} – {block.up_to} kWh" if block.up_to else f"above {floor} kWh"
        tag = " (lifeline)" if block.lifeline else ""
        energy.append(f"Block {span}: {currency} {block.rate} per kWh{tag}")
        floor = block.up_to or floor
    if terms.lifeline_eligible_up_to is not None:
        energy.append(
            f"Lifeline only for months up to {terms.lifeline_eligible_up_to} kWh in total"
        )
    for name, rate in terms.tou_rates.items():
        default = " (outside every window)" if name == terms.tou_default else ""
        energy.append(f"Time of use '{name}': {currency} {rate} per kWh{default}")
    for w in terms.windows:
        overnight = " (overnight)" if w.overnight else ""
        energy.append(
            f"Window {_minutes(w.start)}–{_minutes(w.end)}{overnight} on {_days(w.days)}: "
            f"'{w.period}'"
        )
    sections.append({"title": "Energy", "rows": energy or ["No energy charge."]})
    demand = (
        [
            f"{currency} {terms.demand.rate} per {terms.demand.unit} of the month's maximum "
            f"demand, over {terms.demand.interval_minutes}-minute intervals"
        ]
        if terms.demand
        else ["None."]
    )
    sections.append({"title": "Demand", "rows": demand})
    levies = []
    for levy in terms.levies:
        if levy.per_kwh is not None:
            text = f"{levy.name}: {currency} {levy.per_kwh} per kWh"
        else:
            base = "energy charges" if levy.base == "energy" else "all charges before levies"
            text = f"{levy.name}: {levy.percent}% of {base}"
        levies.append(text + (" (no VAT on it)" if levy.vat_exempt else ""))
    sections.append({"title": "Levies", "rows": levies or ["None."]})
    sections.append({"title": "VAT", "rows": [f"{terms.vat_percent}% on the total"]})
    return sections


def _readable(version: TariffVersion) -> list[dict]:
    try:
        return describe_terms(parse_terms(version.terms), version.tariff.currency)
    except TariffError as exc:
        return [{"title": "Terms cannot be read", "rows": [str(exc)]}]


# --- Tariff pages ----------------------------------------------------------------------------


def _may_view_tariffs(user) -> None:
    if not (user.can(Cap.BILLING_VIEW) or user.can(Cap.PACKAGES_MANAGE)):
        raise PermissionDenied


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


@login_required
def tariff_list(request: HttpRequest) -> HttpResponse:
    _may_view_tariffs(request.user)
    today = clock.now().date()
    rows = []
    for tariff in Tariff.objects.prefetch_related("versions").order_by("code"):
        versions = sorted(tariff.versions.all(), key=lambda v: (v.effective_from, v.pk))
        approved = [v for v in versions if v.status == TariffVersion.Status.APPROVED]
        in_force = next(
            (
                v
                for v in reversed(approved)
                if v.effective_from <= today and (v.effective_to is None or v.effective_to > today)
            ),
            None,
        )
        rows.append(
            {
                "tariff": tariff,
                "in_force": in_force,
                "upcoming": [v for v in approved if v.effective_from > today],
                "proposed": [v for v in versions if v.status == TariffVersion.Status.PROPOSED],
                "rejected": [v for v in versions if v.status == TariffVersion.Status.REJECTED],
            }
        )
    return render(
        request,
        "billing/tariff_list.html",
        {"rows": rows, "can_manage": request.user.can(Cap.PACKAGES_MANAGE)},
    )


class ProposeForm(forms.Form):
    effective_from = forms.DateField(
        help_text="First local day the terms apply (YYYY-MM-DD)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    terms = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "style": "width:100%;box-sizing:border-box"}),
        help_text='JSON: amounts as strings, e.g. {"energy": {"type": "flat", "rate": "13.50"}}',
    )
    reason = forms.CharField(max_length=300, help_text="Why, e.g. the regulator's notice")

    def clean_terms(self) -> dict:
        text = self.cleaned_data["terms"]
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}."
            ) from exc
        try:
            parse_terms(document)
        except TariffError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return document


class DecisionForm(forms.Form):
    note = forms.CharField(max_length=300, required=False)


class VersionChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: TariffVersion) -> str:
        return f"From {obj.effective_from:%Y-%m-%d} ({obj.status})"


class SampleForm(forms.Form):
    version = VersionChoice(queryset=TariffVersion.objects.none(), empty_label=None)
    month = forms.DateField(
        help_text="Any day of the month to price (YYYY-MM-DD)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    kwh = forms.DecimalField(
        label="kWh used in the month", min_value=Decimal(0), max_digits=12, decimal_places=3
    )
    max_demand = forms.DecimalField(
        label="Maximum demand (kW or kVA, for demand tariffs)",
        required=False,
        min_value=Decimal(0),
        max_digits=10,
        decimal_places=3,
    )

    def __init__(self, *args, tariff: Tariff, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].queryset = tariff.versions.exclude(
            status=TariffVersion.Status.REJECTED
        ).order_by("-effective_from", "-pk")


def _sample_calendar(tariff: Tariff, starts: dt.date, ends: dt.date) -> Calendar:
    """The clock and holidays of the first site in the tariff's currency (UTC if none)."""
    site = Site.objects.filter(currency=tariff.currency).order_by("pk").first()
    if site is None:
        return Calendar(zone=zoneinfo.ZoneInfo("UTC"))
    days = PublicHoliday.objects.filter(site=site, date__gte=starts, date__lt=ends)
    return Calendar(zone=site.zone, holidays=frozenset(days.values_list("date", flat=True)))


def sample_bill(version: TariffVersion, month: dt.date, kwh: Decimal, max_demand=None):
    """Price one calendar month under ``version`` for ``kwh`` spread evenly over the month.

    One interval covers the whole month (time-of-use windows share it by time); a
    maximum demand, when given, is one demand interval at that level. A proposed
    version can be previewed this way, though it prices no real bill until approved.
    """
    terms = parse_terms(version.terms)
    starts = month.replace(day=1)
    ends = charges.add_months(starts, 1, 1)
    cal = _sample_calendar(version.tariff, starts, ends)
    zone = cal.zone
    start = dt.datetime.combine(starts, dt.time(0), zone)
    end = dt.datetime.combine(ends, dt.time(0), zone)
    demand = []
    if max_demand and terms.demand:
        minutes = terms.demand.interval_minutes
        at = start + dt.timedelta(days=14, hours=19)
        demand = [
            DemandInterval(
                at, at + dt.timedelta(minutes=minutes), max_demand * Decimal(minutes) / 60
            )
        ]
    return price_period(
        starts=starts,
        ends=ends,
        currency=version.tariff.currency,
        schedule=[InForce(terms=terms, effective_from=starts, label=str(version))],
        calendar=cal,
        usage=[Interval(start, end, kwh)],
        demand=demand,
    )


@login_required
def tariff_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _may_view_tariffs(request.user)
    tariff = get_object_or_404(Tariff, pk=pk)
    versions = list(
        tariff.versions.select_related("proposed_by", "decided_by").order_by(
            "-effective_from", "-pk"
        )
    )
    rows = [{"version": v, "sections": _readable(v)} for v in versions]
    sample = SampleForm(request.GET or None, tariff=tariff)
    bill, sample_error = None, ""
    if request.GET and sample.is_valid():
        data = sample.cleaned_data
        try:
            bill = sample_bill(data["version"], data["month"], data["kwh"], data["max_demand"])
        except TariffError as exc:
            sample_error = str(exc)
    context = {
        "tariff": tariff,
        "rows": rows,
        "can_manage": request.user.can(Cap.PACKAGES_MANAGE),
        "sample": sample,
        "bill": bill,
        "sample_error": sample_error,
    }
    template = "billing/tariff_detail.html#sample" if request.htmx else "billing/tariff_detail.html"
    return render(request, template, context)


@login_required
def tariff_propose(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.PACKAGES_MANAGE)
    tariff = get_object_or_404(Tariff, pk=pk)
    latest = tariff.versions.order_by("-effective_from", "-pk").first()
    initial = {"terms": json.dumps(latest.terms, indent=2)} if latest else {}
    form = ProposeForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            tariff_services.tariff_version_propose(
                tariff=tariff,
                effective_from=data["effective_from"],
                terms=data["terms"],
                reason=data["reason"],
                by=request.user,
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc.messages)
        else:
            messages.success(
                request, "Proposed. Another person must approve it before it prices anything."
            )
            return redirect("billing:tariff-detail", pk=tariff.pk)
    return render(request, "billing/tariff_propose.html", {"form": form, "tariff": tariff})


def _decide(request: HttpRequest, pk: int, approve: bool) -> HttpResponse:
    require(request.user, Cap.PACKAGES_MANAGE)
    version = get_object_or_404(TariffVersion.objects.select_related("tariff"), pk=pk)
    form = DecisionForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        if approve:
            tariff_services.tariff_version_approve(version=version, by=request.user, note=note)
        else:
            tariff_services.tariff_version_reject(version=version, by=request.user, note=note)
    except PermissionDenied as exc:
        messages.error(request, str(exc) or "You may not decide on this change.")
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        verb = "approved: it applies" if approve else "rejected; it will never apply"
        messages.success(request, f"Version from {version.effective_from} {verb}.")
    return redirect("billing:tariff-detail", pk=version.tariff_id)


@login_required
@require_POST
def tariff_version_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=True)


@login_required
@require_POST
def tariff_version_reject(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=False)


# --- Charge pages ----------------------------------------------------------------------------


class ChargeForm(forms.Form):
    kind = forms.ChoiceField(choices=Charge.Kind.choices)
    description = forms.CharField(max_length=200, required=False)
    total = forms.DecimalField(min_value=Decimal("0.01"), max_digits=16, decimal_places=2)
    instalments = forms.IntegerField(
        min_value=1, max_value=charges.MAX_INSTALMENTS, initial=1, help_text="Monthly"
    )
    first_due = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=300)


class DepositReturnForm(forms.Form):
    channel = forms.ChoiceField(
        choices=[("mobile_money", "Mobile money"), ("bank", "Bank")], label="Refund by"
    )
    provider = forms.CharField(max_length=30, required=False, help_text="For mobile money: mtn…")


def _customer(request: HttpRequest, pk: int) -> Customer:
    return get_object_or_404(customers_visible_to(request.user), pk=pk)


def money(amount: Decimal, currency: str) -> str:
    """An amount as people read it: rounded to the currency, thousands separated."""
    return f"{ledger.round_money(amount, currency):,}"


def _charge_page(request, customer, form=None, status=200) -> HttpResponse:
    user = request.user
    cur = customer.site.currency
    rows = [
        {
            "charge": charge,
            "total": money(charge.total, cur),
            "schedule": [(inst, money(inst.amount, cur)) for inst in charge.schedule.all()],
        }
        for charge in charges.charges_of(customer)
    ]
    context = {
        "customer": customer,
        "rows": rows,
        "form": form or ChargeForm(initial={"first_due": clock.now().date()}),
        "can_edit": user.can(Cap.BILLING_RUN) and customer.site in _sites(user),
        "can_return": user.can(Cap.MONEY_APPROVE)
        and customer.status == Customer.Status.CLOSED
        and charges.deposit_held(customer) > 0,
        "deposit_held": money(charges.deposit_held(customer), cur),
        "return_form": DepositReturnForm(),
        "balance": money(ledger.customer_balance(customer), cur),
    }
    return render(request, "billing/charge_list.html", context, status=status)


def _sites(user):
    from mcoms.core.selectors import sites_visible_to

    return set(sites_visible_to(user))


@login_required
def charge_list(request: HttpRequest, customer_id: int) -> HttpResponse:
    require(request.user, Cap.BILLING_VIEW)
    customer = _customer(request, customer_id)
    require(request.user, Cap.BILLING_VIEW, customer.site_id)
    return _charge_page(request, customer)


@login_required
@require_POST
def charge_add(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer(request, customer_id)
    require(request.user, Cap.BILLING_RUN, customer.site_id)
    form = ChargeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            charge = charges.charge_create(customer=customer, by=request.user, **data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            n = charge.instalments
            messages.success(
                request,
                f"{charge.description}: {customer.site.currency} "
                f"{money(charge.total, customer.site.currency)} in {n} "
                f"instalment{'s' if n > 1 else ''} from {charge.first_due}.",
            )
            return redirect("billing:charge-list", customer_id=customer.pk)
    return _charge_page(request, customer, form, status=400)


@login_required
@require_POST
def charge_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    charge = get_object_or_404(Charge, pk=pk, customer__in=customers_visible_to(request.user))
    require(request.user, Cap.BILLING_RUN, charge.customer.site_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the charge is cancelled.")
    else:
        try:
            reason = form.cleaned_data["reason"]
            charges.charge_cancel(charge=charge, reason=reason, by=request.user)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, f"{charge.description} cancelled: no more instalments.")
    return redirect("billing:charge-list", customer_id=charge.customer_id)


@login_required
@require_POST
def charge_deposit_return(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer(request, customer_id)
    require(request.user, Cap.MONEY_APPROVE, customer.site_id)
    form = DepositReturnForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how the rest of the deposit is refunded.")
        return redirect("billing:charge-list", customer_id=customer.pk)
    source = ledger.Source(
        channel=form.cleaned_data["channel"], provider=form.cleaned_data["provider"].strip()
    )
    try:
        result = charges.deposit_return(customer=customer, source=source, by=request.user)
    except (ValidationError, PermissionDenied) as exc:
        text = _error_text(exc) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, text or "You may not return this deposit.")
    else:
        cur = customer.site.currency
        held, against = money(result.held, cur), money(result.against_arrears, cur)
        text = f"Deposit {cur} {held}: {cur} {against} set against arrears"
        if result.refund is not None:
            refund = money(result.refund.amount, cur)
            text += f"; a refund of {cur} {refund} awaits a second person's approval"
        messages.success(request, text + ".")
    return redirect("billing:charge-list", customer_id=customer.pk)
