"""Signing in to the customer portal: phone number and USSD PIN, or a one-time code by SMS.

Customers have no password. They prove who they are with what USSD already uses:

* **Phone and PIN** — the account's USSD PIN, checked by :func:`pins.verify_any`,
  which counts wrong tries and locks exactly as the USSD menu does (three wrong PINs
  lock the account for 30 minutes and tell the owner by SMS).
* **A code by SMS** — six digits sent to the phone (:func:`send_code`), kept only as
  a keyed hash (:class:`~notifications.selfservice.models.PortalCode`), valid for
  ``CODE_VALID``, once, for ``CODE_TRIES`` wrong tries. A phone gets at most
  ``SENDS_PER_WINDOW`` codes per ``SEND_WINDOW``.

From one address (``mcoms.security.addresses.client_address``), at most
``PORTAL_FAILURES_PER_ADDRESS`` wrong PINs or codes, for any phone numbers (known or
not), within ``LOGIN_FAILURE_WINDOW_MINUTES`` before the address is locked out of both
sign-ins for ``LOGIN_LOCK_MINUTES``; and at most ``PORTAL_CODES_PER_ADDRESS_PER_HOUR``
codes asked (each is an SMS we pay for). The counts are
:mod:`mcoms.security.limits` rules, shared by every web process.

The web is not the phone network: whoever types a number need not hold that phone.
So the pages never say whether a number has an account: a code request answers the
same for every number (a request for a number without an account is stored, nothing
is sent, and it counts towards the same limit), and a wrong PIN reads the same as an
unknown number. Only a lock is named, as USSD names it.

A proof (:class:`Proof`) lists the accounts it opens: the accounts using the phone as
their phone or second phone (as USSD finds them), or for a PIN only those whose PIN it
is. One account: signed in at once; several: the person chooses one (the proof waits
in the session for ``PROOF_VALID``). Signing in to an account that has no login yet
creates one (role customer, no password) and links it with
:func:`customers.services.customer_link_user`. An account whose login is staff's is
refused: staff sign in with their password. Every sign-in is a
:class:`~notifications.selfservice.models.PortalSignIn` row and an audit event.

:class:`PortalBackend` is the authentication backend that turns a proof and a chosen
account into a user; list it in ``AUTHENTICATION_BACKENDS``.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from customers import services as customer_services
from customers.models import Customer
from customers.phones import display_phone, normalise_phone
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from mcoms.core.roles import Role
from mcoms.security import limits
from mcoms.security.addresses import client_address
from notifications import services as messaging
from notifications.models import Channel, MessageTemplate
from notifications.selfservice import pins
from notifications.selfservice.models import PortalCode, PortalSignIn
from notifications.selfservice.ussd import customers_for

log = logging.getLogger(__name__)

CODE_LENGTH = 6
CODE_VALID = dt.timedelta(minutes=10)
CODE_TRIES = 5
SEND_WINDOW = dt.timedelta(minutes=15)
SENDS_PER_WINDOW = 3
PROOF_VALID = dt.timedelta(minutes=10)
SESSION_PROOF = "portal_proof"
SESSION_CODE_PHONE = "portal_code_phone"
BACKEND = f"{__name__}.PortalBackend"

CODE_TEMPLATE = "selfservice_portal_code"
CODE_TEXTS = {
    "en": "{{ code }} is your sign-in code for the customer portal. It works for 10 minutes. "
    "Never share it: our staff never ask for it.",
    "sw": "{{ code }} ni nambari yako ya kuingia kwenye tovuti ya wateja. Inafanya kazi kwa "
    "dakika 10. Usimpe mtu: wafanyakazi wetu hawaiulizi.",
    "lg": "{{ code }} ye nnamba yo ey'okuyingira ku mukutu gwa bakasitoma. Ekola okumala "
    "eddakiika 10. Togiwa muntu: abakozi baffe tebagibuuza.",
}


# --- proofs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proof:
    """What a sign-in attempt established: the phone, how, and which accounts it opens."""

    phone: str
    method: str
    accounts: tuple[int, ...] = ()
    at: dt.datetime | None = None

    def as_session(self) -> dict:
        return {
            "phone": self.phone,
            "method": self.method,
            "accounts": list(self.accounts),
            "at": self.at.isoformat() if self.at else None,
        }

    @classmethod
    def from_session(cls, data: dict | None, *, now: dt.datetime) -> Proof | None:
        """The proof kept in the session, if there is one and it is recent."""
        if not data or not data.get("at"):
            return None
        at = dt.datetime.fromisoformat(data["at"])
        if now - at > PROOF_VALID:
            return None
        return cls(data["phone"], data["method"], tuple(data["accounts"]), at)


@dataclass(frozen=True)
class Outcome:
    """The answer to one try: a proof, or a sentence saying why not."""

    proof: Proof | None = None
    error: str = ""
    locked_until: dt.datetime | None = None
    one_time_pin: bool = False
    notes: list[str] = field(default_factory=list)


def phone_number(raw: str) -> str:
    """``raw`` as E.164, read as the rest of the platform reads phone numbers."""
    return normalise_phone(raw)


def accounts_for(phone: str) -> list[Customer]:
    """The open accounts using ``phone`` (the same lookup as the USSD menu)."""
    return customers_for(phone)


def check_pin(phone: str, pin: str, *, now: dt.datetime | None = None) -> Outcome:
    """Check ``pin`` against the accounts on ``phone``, counting wrong tries as USSD does."""
    at = clock.resolve(now)
    accounts = accounts_for(phone)
    opened, checks = pins.verify_any(accounts, pin.strip(), now=at)
    if opened:
        return Outcome(
            proof=Proof(phone, PortalSignIn.Method.PIN, tuple(c.pk for c in opened), at),
            one_time_pin=any(c.one_time for c in checks if c.ok),
        )
    locks = [c.locked_until for c in checks if c.locked_until]
    if checks and len(locks) == len(checks):
        until = min(locks)
        return Outcome(
            error="Too many wrong PINs: signing in with the PIN is locked until "
            f"{pins.local_time(accounts[0], until)}. You can sign in with a code by SMS.",
            locked_until=until,
        )
    return Outcome(
        error="The phone number or the PIN is not right. After 3 wrong PINs the account "
        "is locked for 30 minutes."
    )


# --- one-time codes -----------------------------------------------------------------------------


def _hash(phone: str, code: str) -> str:
    return salted_hmac("mcoms.portal.code", f"{phone}:{code}", algorithm="sha256").hexdigest()


def install_templates() -> list[str]:
    """Create the sign-in code's SMS templates that are missing (essential: it always goes)."""
    created = []
    for language, body in CODE_TEXTS.items():
        _, new = MessageTemplate.objects.get_or_create(
            key=CODE_TEMPLATE,
            language=language,
            channel=Channel.SMS,
            defaults={"body": body, "essential": True},
        )
        if new:
            created.append(f"{CODE_TEMPLATE} ({language})")
    return created


def next_send_at(phone: str, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """When ``phone`` may have another code, or None if it may have one now."""
    at = clock.resolve(now)
    recent = list(
        PortalCode.objects.filter(phone=phone, created_at__gt=at - SEND_WINDOW)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:SENDS_PER_WINDOW]
    )
    if len(recent) < SENDS_PER_WINDOW:
        return None
    return recent[-1] + SEND_WINDOW


@transaction.atomic
def send_code(phone: str, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """Send a fresh code to ``phone`` if it has an account; earlier codes stop working.

    Returns None when done (or quietly not sent: no account), else the time another
    code may be asked for (the limit applies to every number alike).
    """
    at = clock.resolve(now)
    wait = next_send_at(phone, now=at)
    if wait is not None:
        return wait
    PortalCode.objects.filter(phone=phone, used_at__isnull=True, expires_at__gt=at).update(
        expires_at=at
    )
    code = f"{secrets.randbelow(10**CODE_LENGTH):0{CODE_LENGTH}d}"
    accounts = accounts_for(phone)
    PortalCode.objects.create(
        phone=phone,
        code_hash=_hash(phone, code),
        sent=bool(accounts),
        created_at=at,
        expires_at=at + CODE_VALID,
    )
    if accounts:
        _text_code(phone, code, accounts[0], at)
    return None


CODES_KEPT = dt.timedelta(days=2)


def purge_codes(*, now: dt.datetime | None = None) -> int:
    """Forget sign-in codes older than ``CODES_KEPT`` (they live ten minutes); returns how many."""
    deleted, _ = PortalCode.objects.filter(created_at__lt=clock.resolve(now) - CODES_KEPT).delete()
    return deleted


def _text_code(phone: str, code: str, customer: Customer, at: dt.datetime) -> None:
    kwargs = {
        "to": phone,
        "template": CODE_TEMPLATE,
        "context": {"code": code},
        "language": customer.language,
        "about": f"customers.customer:{customer.pk}",
        "site_id": customer.site_id,
        "now": at,
    }
    try:
        messaging.send_message(**kwargs)
    except messaging.TemplateMissing:
        install_templates()
        messaging.send_message(**kwargs)


def check_code(phone: str, code: str, *, now: dt.datetime | None = None) -> Outcome:
    """Check ``code`` against the latest code sent to ``phone``; a right one is used up."""
    at = clock.resolve(now)
    code = "".join(code.split())
    with transaction.atomic():
        row = PortalCode.objects.select_for_update().filter(phone=phone).first()
        if row is None or row.used_at is not None or row.expires_at <= at:
            return Outcome(error="This code has expired or was used. Ask for a new one.")
        if row.attempts >= CODE_TRIES:
            return Outcome(error="Too many wrong codes. Ask for a new one.")
        if not constant_time_compare(row.code_hash, _hash(phone, code)):
            row.attempts += 1
            row.save(update_fields=["attempts"])
            left = CODE_TRIES - row.attempts
            if not left:
                return Outcome(error="Too many wrong codes. Ask for a new one.")
            return Outcome(error=f"That code is not right. Tries left: {left}.")
        row.used_at = at
        row.save(update_fields=["used_at"])
    accounts = accounts_for(phone)
    if not accounts:  # an unused code for a number without an account cannot be right
        return Outcome(error="This code has expired or was used. Ask for a new one.")
    return Outcome(proof=Proof(phone, PortalSignIn.Method.CODE, tuple(c.pk for c in accounts), at))


# --- from a proof to a signed-in user -----------------------------------------------------------


class NotForThePortal(Exception):
    """The account's login belongs to staff (or is switched off): no PIN or code opens it."""


def user_for(customer: Customer):
    """The account's login; one is created (role customer, no password) when it has none."""
    user = customer.user
    if user is not None:
        if user.role != Role.CUSTOMER or user.is_staff or user.is_superuser or not user.is_active:
            raise NotForThePortal(customer.account_number)
        return user
    User = get_user_model()
    base = f"customer-{customer.account_number.lower()}"
    for n in range(1, 20):
        username = base if n == 1 else f"{base}-{n}"
        if User.objects.filter(username=username).exists():
            continue
        try:
            with transaction.atomic():
                user = User(
                    username=username,
                    first_name=customer.first_name,
                    last_name=customer.last_name,
                    role=Role.CUSTOMER,
                    phone=customer.phone,
                )
                user.set_unusable_password()
                user.save()
        except IntegrityError:
            continue
        customer_services.customer_link_user(customer=customer, user=user)
        return user
    raise NotForThePortal(customer.account_number)  # pragma: no cover - 19 taken names


class PortalBackend(ModelBackend):
    """Signs a person in to an account that their proof opens (never by username)."""

    def authenticate(self, request, portal_proof: Proof | None = None, account=None, **kwargs):
        if portal_proof is None or account is None or account.pk not in portal_proof.accounts:
            return None
        try:
            user = user_for(account)
        except NotForThePortal:
            return None
        return user if self.user_can_authenticate(user) else None


def _backend_path() -> str:
    # Until the backend is listed in settings, sessions are kept by the first one listed
    # (a ModelBackend: it loads the user by id, as ours does).
    listed = settings.AUTHENTICATION_BACKENDS
    return BACKEND if BACKEND in listed else listed[0]


def sign_in(request: HttpRequest, proof: Proof, account: Customer) -> bool:
    """Sign the browser in to ``account`` on ``proof``: the login, a record, an audit event."""
    actor = audit.acting_as(label=f"portal {proof.phone}", channel=AuditEvent.Channel.PORTAL)
    with actor, transaction.atomic():
        user = PortalBackend().authenticate(request, portal_proof=proof, account=account)
        if user is None:
            return False
    login(request, user, backend=_backend_path())
    if not pins.usable(account):  # the home page tells them how to set one on USSD
        request.session["portal_no_pin"] = True
    with audit.acting_as(user, channel=AuditEvent.Channel.PORTAL), transaction.atomic():
        row = PortalSignIn.objects.create(
            customer=account, user=user, method=proof.method, phone=proof.phone, at=clock.now()
        )
        audit.record(
            AuditEvent.Action.CREATE,
            row,
            after=audit.snapshot(row),
            site=account.site_id,
            note=f"signed in to {account.account_number} by {row.get_method_display().lower()}",
        )
    return True


# --- pages --------------------------------------------------------------------------------------


class PhoneField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Phone number")
        kwargs.setdefault("max_length", 20)
        kwargs.setdefault("help_text", "The number your account uses, e.g. 0772 123456")
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "tel", "autocomplete": "tel"})

    def clean(self, value):
        value = super().clean(value)
        try:
            return phone_number(value)
        except ValidationError as exc:
            raise ValidationError("Enter your phone number, e.g. 0772 123456.") from exc


class PinForm(forms.Form):
    phone = PhoneField()
    pin = forms.CharField(
        label="PIN",
        max_length=pins.PIN_LENGTH,
        min_length=pins.PIN_LENGTH,
        help_text="The 4-digit PIN you use on the USSD menu",
        widget=forms.PasswordInput(
            attrs={"inputmode": "numeric", "autocomplete": "current-password", "pattern": "[0-9]*"}
        ),
    )


class CodeRequestForm(forms.Form):
    phone = PhoneField()


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from the SMS",
        max_length=12,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*"}
        ),
    )


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("customers:portal")


def _finish(request: HttpRequest, outcome: Outcome) -> HttpResponse:
    """One account: signed in. Several: the choice. A staff login: refused."""
    proof = outcome.proof
    if len(proof.accounts) == 1:
        account = Customer.objects.select_related("site").get(pk=proof.accounts[0])
        if not sign_in(request, proof, account):
            return _refused(request)
        if outcome.one_time_pin:
            request.session["portal_one_time_pin"] = True
        return redirect(_next(request))
    request.session[SESSION_PROOF] = proof.as_session()
    if outcome.one_time_pin:
        request.session["portal_one_time_pin"] = True
    url = reverse("selfservice:portal-choose")
    target = request.POST.get("next") or request.GET.get("next")
    return redirect(f"{url}?{urlencode({'next': target})}" if target else url)


def _refused(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "selfservice/portal_sign_in.html",
        {
            "form": PinForm(),
            "error": "This account signs in with a username and password.",
            "login_url": reverse("login"),
        },
        status=403,
    )


def _signed_in_customer(request: HttpRequest) -> bool:
    user = request.user
    return user.is_authenticated and getattr(user, "role", None) == Role.CUSTOMER


@never_cache
@sensitive_post_parameters("pin")
def sign_in_pin(request: HttpRequest) -> HttpResponse:
    """Phone number and USSD PIN."""
    if request.method != "POST" and _signed_in_customer(request):
        return redirect("customers:portal")
    form = PinForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        address = client_address(request)
        error = _address_refusal(address)
        if not error:
            outcome = check_pin(form.cleaned_data["phone"], form.cleaned_data["pin"])
            if outcome.proof is not None:
                return _finish(request, outcome)
            error = _count_failure(address) or outcome.error
            log.info("portal PIN sign-in refused for %s", form.cleaned_data["phone"])
    context = {
        "form": form,
        "error": error,
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "ussd_code": getattr(settings, "USSD_SERVICE_CODE", ""),
    }
    return render(request, "selfservice/portal_sign_in.html", context, status=400 if error else 200)


@never_cache
@sensitive_post_parameters("code")
def sign_in_code(request: HttpRequest) -> HttpResponse:
    """A code by SMS: first the phone number, then the code."""
    if request.method != "POST" and _signed_in_customer(request):
        return redirect("customers:portal")
    phone = request.session.get(SESSION_CODE_PHONE)
    step = request.POST.get("step") or ("code" if phone and request.GET.get("sent") else "phone")
    context: dict = {"next": request.POST.get("next") or request.GET.get("next", "")}
    if step == "code" and phone:
        form = CodeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            address = client_address(request)
            context["error"] = _address_refusal(address)
            if not context["error"]:
                outcome = check_code(phone, form.cleaned_data["code"])
                if outcome.proof is not None:
                    request.session.pop(SESSION_CODE_PHONE, None)
                    return _finish(request, outcome)
                context["error"] = _count_failure(address) or outcome.error
        context.update(form=form, step="code", phone=display_phone(phone))
        return render(request, "selfservice/portal_code.html", context)
    form = CodeRequestForm(request.POST or None, initial={"phone": phone or ""})
    if request.method == "POST" and step == "phone" and form.is_valid():
        phone = form.cleaned_data["phone"]
        address = client_address(request)
        refused = _address_refusal(address)
        if refused or not limits.allowed(limits.portal_codes_address(), address):
            until = limits.locked_until(limits.portal_codes_address(), address) or clock.now()
            context["error"] = refused or (
                f"Too many codes asked from this connection. Try again after {_wait_text(until)}."
            )
            context.update(form=form, step="phone")
            return render(request, "selfservice/portal_code.html", context, status=429)
        wait = send_code(phone)
        if wait is None:
            request.session[SESSION_CODE_PHONE] = phone
            return redirect(
                reverse("selfservice:portal-sign-in-code")
                + "?"
                + urlencode({"sent": 1, **({"next": context["next"]} if context["next"] else {})})
            )
        context["error"] = (
            f"Too many codes asked for this number. Try again after {_wait_text(wait)}."
        )
    context.update(form=form, step="phone")
    return render(request, "selfservice/portal_code.html", context)


def _address_refusal(address: str) -> str:
    until = limits.locked_until(limits.portal_address(), address)
    if until is None:
        return ""
    return f"Too many tries from this connection: try again at {limits.local_time(until)}."


def _count_failure(address: str) -> str:
    """Count a wrong PIN or code from ``address``; the lock message when this one locks it."""
    if limits.hit(limits.portal_address(), address) is None:
        return ""
    return _address_refusal(address)


def _wait_text(until: dt.datetime) -> str:
    minutes = max(1, round((until - clock.now()).total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@never_cache
def choose_account(request: HttpRequest) -> HttpResponse:
    """Several accounts on one phone: the person picks the one to open."""
    proof = Proof.from_session(request.session.get(SESSION_PROOF), now=clock.now())
    if proof is None:
        return redirect("selfservice:portal-sign-in")
    accounts = list(
        Customer.objects.filter(pk__in=proof.accounts)
        .select_related("site")
        .order_by("account_number")
    )
    if request.method == "POST":
        chosen = next((c for c in accounts if str(c.pk) == request.POST.get("account")), None)
        if chosen is not None:
            request.session.pop(SESSION_PROOF, None)
            one_time = request.session.pop("portal_one_time_pin", False)
            if not sign_in(request, proof, chosen):
                return _refused(request)
            if one_time:
                request.session["portal_one_time_pin"] = True
            return redirect(_next(request))
    context = {"accounts": accounts, "next": request.GET.get("next", "")}
    return render(request, "selfservice/portal_choose.html", context)
