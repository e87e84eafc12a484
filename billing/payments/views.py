"""Payment pages: management (payments, holds, cash, settlements) and the field agent's."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing import ledger
from billing.models import LedgerAccount, MoneyRequest
from billing.payments import allocation, receipts, services, settlements
from billing.payments.models import (
    CashHandover,
    Method,
    Payment,
    PaymentRequest,
    Refund,
    Settlement,
)
from customers import access
from customers.models import Customer
from customers.selectors import customer_search, customers_visible_to
from mcoms.core import audit
from mcoms.core.models import AuditEvent, User
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _site_choices(user: User, capability: str):
    return [s for s in sites_visible_to(user) if can_on_site(user, capability, s.pk)]


# --- Management: payments and requests ----------------------------------------------------------


@login_required
def payment_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.BILLING_VIEW)
    sites = sites_visible_to(request.user)
    payments = Payment.objects.filter(site__in=sites).select_related("customer", "site")
    params = request.GET
    if params.get("site"):
        payments = payments.filter(site_id=params["site"])
    if params.get("method"):
        payments = payments.filter(method=params["method"])
    if params.get("status"):
        payments = payments.filter(status=params["status"])
    q = params.get("q", "").strip()
    if q:
        payments = payments.filter(
            Q(receipt_number__icontains=q)
            | Q(provider_txn_id__icontains=q)
            | Q(customer__account_number__icontains=q)
        )
    requests_ = PaymentRequest.objects.filter(customer__site__in=sites).select_related(
        "customer__site"
    )
    if params.get("site"):
        requests_ = requests_.filter(customer__site_id=params["site"])
    context = {
        "page": Paginator(payments, 50).get_page(params.get("page")),
        "pending": requests_.filter(status=PaymentRequest.Status.PENDING)[:50],
        "held": requests_.filter(status=PaymentRequest.Status.HELD)[:50],
        "refunds": Refund.objects.filter(
            payment__site__in=sites, money_request__status=MoneyRequest.Status.REQUESTED
        ).select_related("payment__customer", "money_request__requested_by"),
        "sites": sites,
        "methods": Method.choices,
        "statuses": Payment.Status.choices,
        "params": params,
        "q": q,
        "can_resolve": request.user.can(Cap.MONEY_APPROVE),
    }
    return render(request, "payments/list.html", context)


def _payment_for(request: HttpRequest, pk: int) -> Payment:
    payment = get_object_or_404(
        Payment.objects.select_related("customer", "site", "agent", "request"), pk=pk
    )
    own_cash = payment.agent_id == request.user.pk
    if not (own_cash or can_on_site(request.user, Cap.BILLING_VIEW, payment.site_id)):
        raise PermissionDenied
    return payment


@login_required
def payment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    payment = _payment_for(request, pk)
    data = receipts.context(payment)
    can_approve = can_on_site(request.user, Cap.MONEY_APPROVE, payment.site_id)
    data.update(
        {
            "refunds": payment.refunds.select_related("money_request__requested_by"),
            "can_reverse": can_approve
            and payment.status == Payment.Status.COMPLETED
            and not payment.refunded,
            "can_refund": can_approve and payment.status == Payment.Status.COMPLETED,
            "can_approve": can_approve,
            "refundable": services.refundable(payment),
        }
    )
    return render(request, "payments/detail.html", data)


@login_required
def receipt_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    payment = _payment_for(request, pk)
    access.record(request, access.Action.EXPORT, [payment.customer_id], what="receipt PDF")
    response = HttpResponse(receipts.pdf(payment), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{payment.receipt_number}.pdf"'
    return response


@login_required
@require_POST
def payment_reverse(request: HttpRequest, pk: int) -> HttpResponse:
    payment = _payment_for(request, pk)
    try:
        services.reverse_payment(
            payment=payment, reason=request.POST.get("reason", ""), by=request.user
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, f"Receipt {payment.receipt_number} reversed.")
    return redirect("payments:detail", pk=pk)


@login_required
@require_POST
def refund_create(request: HttpRequest, pk: int) -> HttpResponse:
    payment = _payment_for(request, pk)
    try:
        services.refund_request(
            payment=payment,
            amount=request.POST.get("amount", ""),
            reason=request.POST.get("reason", ""),
            by=request.user,
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, "Refund requested; another person must approve it.")
    return redirect("payments:detail", pk=pk)


@login_required
@require_POST
def refund_decide(request: HttpRequest, pk: int) -> HttpResponse:
    refund = get_object_or_404(Refund.objects.select_related("payment"), pk=pk)
    require(request.user, Cap.MONEY_APPROVE, refund.payment.site_id)
    try:
        if request.POST.get("decision") == "approve":
            services.refund_approve(
                refund=refund, by=request.user, note=request.POST.get("note", "")
            )
            messages.success(request, f"Refund of {refund.amount} approved and posted.")
        else:
            services.refund_reject(
                refund=refund, by=request.user, note=request.POST.get("note", "")
            )
            messages.success(request, "Refund rejected.")
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    except PermissionDenied as exc:  # e.g. the requester approving their own refund
        messages.error(request, str(exc) or "You may not decide this refund.")
    return redirect("payments:detail", pk=refund.payment_id)


@login_required
@require_POST
def request_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    req = get_object_or_404(PaymentRequest.objects.select_related("customer"), pk=pk)
    require(request.user, Cap.MONEY_APPROVE, req.customer.site_id)
    try:
        services.resolve_held(
            request=req,
            action=request.POST.get("action", ""),
            by=request.user,
            note=request.POST.get("note", ""),
            amount=request.POST.get("amount") or None,
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
    else:
        messages.success(request, "Request resolved.")
    return redirect("payments:list")


@login_required
@require_POST
def request_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the provider about one pending request now, instead of waiting for the poller."""
    req = get_object_or_404(PaymentRequest.objects.select_related("customer"), pk=pk)
    require(request.user, Cap.BILLING_VIEW, req.customer.site_id)
    if req.status == PaymentRequest.Status.PENDING:
        with audit.acting_as(request.user, channel=AuditEvent.Channel.WEB):
            req = services.refresh(req)
    messages.info(request, f"{req.get_provider_display()} request: {req.get_status_display()}.")
    return redirect("payments:list")


# --- Agents' cash --------------------------------------------------------------------------------


@login_required
def cash(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.CASH_RECEIVE)
    sites = _site_choices(request.user, Cap.CASH_RECEIVE)
    context = {
        "positions": services.cash_positions(sites),
        "handovers": CashHandover.objects.filter(site__in=sites).select_related(
            "agent", "received_by", "site"
        )[:50],
    }
    return render(request, "payments/cash.html", context)


class HandoverForm(forms.Form):
    account = forms.ChoiceField(label="Agent and site")
    counted = forms.DecimalField(label="Counted amount", min_value=0, decimal_places=2)
    destination = forms.ChoiceField(choices=CashHandover.Destination.choices)
    note = forms.CharField(required=False, max_length=300)

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.accounts = {str(a.pk): a for a in accounts}
        self.fields["account"].choices = [
            (
                str(a.pk),
                f"{a.agent.get_full_name() or a.agent.get_username()} — {a.site.name} "
                f"(on hand {ledger.balance(a)} {a.currency})",
            )
            for a in accounts
        ]


@login_required
def handover(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.CASH_RECEIVE)
    sites = _site_choices(request.user, Cap.CASH_RECEIVE)
    accounts = list(
        LedgerAccount.objects.filter(site__in=sites, kind=LedgerAccount.Kind.CASH)
        .exclude(agent=request.user)
        .select_related("agent", "site")
    )
    initial = {"account": request.GET.get("account", "")}
    form = HandoverForm(request.POST or None, accounts=accounts, initial=initial)
    if request.method == "POST" and form.is_valid():
        acct = form.accounts[form.cleaned_data["account"]]
        try:
            done = services.cash_handover(
                agent=acct.agent,
                site=acct.site,
                counted=form.cleaned_data["counted"],
                received_by=request.user,
                destination=form.cleaned_data["destination"],
                note=form.cleaned_data["note"],
            )
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _errors(exc) if isinstance(exc, ValidationError) else str(exc))
        else:
            if done.difference:
                word = "short" if done.difference < 0 else "over"
                messages.warning(
                    request,
                    f"Received {done.counted} {done.currency}: {word} by "
                    f"{abs(done.difference)} against {done.expected} expected.",
                )
            else:
                messages.success(request, f"Received {done.counted} {done.currency}; it matches.")
            return redirect("payments:cash")
    return render(request, "form.html", {"form": form, "title": "Receive an agent's cash"})


# --- Settlements ---------------------------------------------------------------------------


class SettlementForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None)
    provider = forms.ChoiceField(choices=[(m.value, m.label) for m in settlements.PROVIDERS])
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    file = forms.FileField(help_text="CSV: transaction id, amount, fee, date")

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites


@login_required
def settlement_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.LEDGER_CLOSE)
    sites = sites_visible_to(request.user).filter(
        pk__in=[s.pk for s in _site_choices(request.user, Cap.LEDGER_CLOSE)]
    )
    form = SettlementForm(request.POST or None, request.FILES or None, sites=sites)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            form.add_error("file", "The file is not UTF-8 text (save it as CSV).")
        else:
            try:
                done = settlements.import_settlement(
                    site=form.cleaned_data["site"],
                    provider=form.cleaned_data["provider"],
                    day=form.cleaned_data["day"],
                    text=text,
                    by=request.user,
                    filename=upload.name,
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error("file", message)
            else:
                messages.success(request, "Settlement imported and reconciled.")
                return redirect("payments:settlement", pk=done.pk)
    context = {
        "form": form,
        "settlements": Settlement.objects.filter(site__in=sites).select_related("site")[:60],
    }
    return render(request, "payments/settlements.html", context)


@login_required
def settlement_detail(request: HttpRequest, pk: int) -> HttpResponse:
    settlement = get_object_or_404(Settlement.objects.select_related("site"), pk=pk)
    require(request.user, Cap.LEDGER_CLOSE, settlement.site_id)
    lines = settlement.lines.select_related("payment__customer")
    groups = [
        (label, [line for line in lines if line.result == value])
        for value, label in settlements.Result.choices
    ]
    return render(
        request,
        "payments/settlement.html",
        {"settlement": settlement, "groups": groups, "summary": settlements.summary(settlement)},
    )


# --- Field agent ---------------------------------------------------------------------------


def _own_cash(user: User) -> list[tuple]:
    rows = []
    for acct in LedgerAccount.objects.filter(
        kind=LedgerAccount.Kind.CASH, agent=user
    ).select_related("site"):
        rows.append((acct.site, ledger.balance(acct), acct.currency))
    return rows


@login_required
def field_home(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.PAYMENTS_RECORD)
    q = request.GET.get("q", "").strip()
    results = None
    if q:
        results = list(
            customer_search(request.user, q).filter(
                site__in=_site_choices(request.user, Cap.PAYMENTS_RECORD)
            )[:20]
        )
        access.record(
            request, access.Action.SEARCH, results, what="take a payment search", query=f"q={q}"
        )
    context = {"q": q, "results": results, "cash": _own_cash(request.user)}
    template = "payments/field.html#results" if request.htmx else "payments/field.html"
    return render(request, template, context)


class CashForm(forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0.01"),
        decimal_places=2,
        widget=forms.NumberInput(attrs={"inputmode": "decimal"}),
    )
    note = forms.CharField(required=False, max_length=300)


class AskForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), decimal_places=2)
    phone = forms.CharField(
        required=False, max_length=20, help_text="Empty: the customer's own number"
    )


@login_required
def field_customer(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(customers_visible_to(request.user), pk=pk)
    require(request.user, Cap.PAYMENTS_RECORD, customer.site_id)
    form = CashForm(request.POST if request.POST.get("kind") == "cash" else None)
    ask = AskForm(request.POST if request.POST.get("kind") == "ask" else None, prefix="ask")
    if request.method == "POST" and form.is_bound and form.is_valid():
        try:
            with audit.acting_as(request.user, channel=AuditEvent.Channel.AGENT_APP):
                payment = services.record_cash(
                    customer=Customer.objects.get(pk=pk),
                    amount=form.cleaned_data["amount"],
                    agent=request.user,
                    note=form.cleaned_data["note"],
                )
        except ValidationError as exc:
            form.add_error("amount", _errors(exc))
        else:
            messages.success(
                request,
                f"Receipt {payment.receipt_number}: {payment.amount} {payment.currency} "
                "recorded; the customer gets an SMS receipt.",
            )
            return redirect("payments:detail", pk=payment.pk)
    if request.method == "POST" and ask.is_bound and ask.is_valid():
        try:
            with audit.acting_as(request.user, channel=AuditEvent.Channel.AGENT_APP):
                req = services.request_to_pay(
                    customer=customer,
                    amount=ask.cleaned_data["amount"],
                    phone=ask.cleaned_data["phone"] or None,
                    channel=PaymentRequest.Channel.FIELD,
                    by=request.user,
                )
        except ValidationError as exc:
            ask.add_error(None, _errors(exc))
        else:
            level = messages.error if req.status == PaymentRequest.Status.FAILED else messages.info
            level(
                request,
                f"{req.get_provider_display()}: {req.get_status_display()}. {req.detail}".strip(),
            )
            return redirect("payments:field-customer", pk=pk)
    context = {
        "customer": customer,
        "balance": ledger.customer_balance(customer),
        "open": allocation.open_invoices(customer),
        "recent": customer.payments.all()[:5],
        "form": form,
        "ask": ask,
        "cash": _own_cash(request.user),
    }
    return render(request, "payments/field_customer.html", context)
