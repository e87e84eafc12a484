"""Staff sign-in (with its limits and second step) and the two-factor enrolment page."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from mcoms.core import clock
from mcoms.core.models import User
from mcoms.security import signin, twofactor
from mcoms.security.addresses import client_address

SESSION_PENDING = "mcoms_2fa_pending"
PENDING_VALID = dt.timedelta(minutes=5)


class StaffAuthenticationForm(AuthenticationForm):
    """Django's sign-in form, refusing locked usernames and addresses and counting failures."""

    def clean(self):
        username = self.data.get("username", "")
        address = client_address(self.request)
        refused = signin.refusal(username, address)
        if refused:
            raise ValidationError(refused, code="locked")
        try:
            return super().clean()
        except ValidationError:
            locked = signin.failed(username, address)
            if locked:
                raise ValidationError(locked, code="locked") from None
            raise


class StaffLoginView(LoginView):
    """Step one: the password. A person with an authenticator goes on to step two
    without being signed in; everyone else is signed in here."""

    form_class = StaffAuthenticationForm

    def form_valid(self, form):
        user = form.get_user()
        if twofactor.device_of(user) is not None:
            self.request.session[SESSION_PENDING] = {
                "user": user.pk,
                "backend": user.backend,
                "at": clock.now().isoformat(),
                "next": self.get_success_url(),
            }
            return redirect("two-factor-sign-in")
        signin.succeeded(user.get_username())
        return super().form_valid(form)


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=20,
        help_text="Six digits, or one of your recovery codes",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


def _pending(request: HttpRequest) -> tuple[User, dict] | None:
    data = request.session.get(SESSION_PENDING)
    if not data:
        return None
    if clock.now() - dt.datetime.fromisoformat(data["at"]) > PENDING_VALID:
        request.session.pop(SESSION_PENDING, None)
        return None
    user = User.objects.filter(pk=data["user"], is_active=True).first()
    return (user, data) if user else None


@never_cache
@sensitive_post_parameters("code")
def second_step(request: HttpRequest) -> HttpResponse:
    """Step two: a code from the authenticator (or a recovery code) completes the sign-in."""
    pending = _pending(request)
    if pending is None:
        return redirect("login")
    user, data = pending
    form = CodeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        address = client_address(request)
        error = signin.refusal(user.get_username(), address) or ""
        how = None if error else twofactor.verify(user, form.cleaned_data["code"])
        if how:
            request.session.pop(SESSION_PENDING, None)
            auth_login(request, user, backend=data["backend"])
            request.session[twofactor.SESSION_VERIFIED] = twofactor.device_of(user).pk
            signin.succeeded(user.get_username())
            if how == "recovery":
                left = twofactor.recovery_codes_left(user)
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. If your phone is lost, "
                    "ask an admin to reset your authenticator.",
                )
            target = data.get("next") or ""
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = "home"
            return redirect(target)
        if not error:
            error = signin.failed(user.get_username(), address) or "That code is not right."
        if error.startswith("Too many"):
            request.session.pop(SESSION_PENDING, None)
    return render(
        request,
        "security/two_factor_code.html",
        {"form": form, "error": error},
        status=400 if error else 200,
    )


@never_cache
@login_required
@sensitive_post_parameters("code")
def setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator (QR code, key, first code), or see it and renew recovery codes."""
    user = request.user
    if not twofactor.may_enrol(user):
        raise PermissionDenied
    device = twofactor.start_enrolment(user)
    form = CodeForm(request.POST or None)
    context = {"form": form, "device": device, "required": twofactor.must_enrol(user)}
    if device.confirmed_at is None:
        if request.method == "POST" and form.is_valid():
            codes = twofactor.confirm(device, form.cleaned_data["code"])
            if codes:
                request.session[twofactor.SESSION_VERIFIED] = device.pk
                return render(request, "security/recovery_codes.html", {"codes": codes})
            context["error"] = "That code is not right: check the time on your phone and retry."
        context.update(qr=twofactor.qr_svg(device), key=twofactor.key_text(device))
        return render(
            request,
            "security/two_factor_setup.html",
            context,
            status=400 if context.get("error") else 200,
        )
    if request.method == "POST" and form.is_valid():
        if twofactor.verify(user, form.cleaned_data["code"]) == "totp":
            codes = twofactor.new_recovery_codes(user)
            return render(request, "security/recovery_codes.html", {"codes": codes})
        context["error"] = "That code is not right."
    context["left"] = twofactor.recovery_codes_left(user)
    return render(request, "security/two_factor_status.html", context)
