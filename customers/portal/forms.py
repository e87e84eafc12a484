"""The portal's forms: what a customer may change or ask for themselves."""

from __future__ import annotations

from django import forms

from billing.selectors import packages_on_offer
from customers.models import Customer, ServiceRequest


class ProfileForm(forms.Form):
    """The details a customer may change; a new main phone number needs staff."""

    alt_phone = forms.CharField(
        label="Second phone number",
        max_length=20,
        required=False,
        help_text="Another number for SMS and USSD; it can sign in here too. Leave empty for none.",
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )
    language = forms.ChoiceField(label="Language for messages", choices=Customer.Language.choices)
    location = forms.CharField(
        label="Where you are",
        max_length=200,
        required=False,
        help_text="Village, plot or building, so that your field agent finds you",
    )
    reminders = forms.BooleanField(
        label="Send me reminders and news by SMS",
        required=False,
        help_text="Bills, receipts, PINs and warnings about your supply are always sent.",
    )


REQUEST_KINDS = [
    (ServiceRequest.Kind.PACKAGE_CHANGE, "Change my package"),
    (ServiceRequest.Kind.FAULT, "Report a fault"),
    (ServiceRequest.Kind.COMPLAINT, "A complaint or another request"),
]


class RequestForm(forms.Form):
    kind = forms.ChoiceField(label="What do you need?", choices=REQUEST_KINDS)
    requested_package = forms.ModelChoiceField(
        label="The package you want",
        queryset=packages_on_offer(),
        required=False,
        empty_label="(only for a package change)",
    )
    description = forms.CharField(
        label="Tell us more",
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        offer = packages_on_offer()
        if customer.package_id:
            offer = offer.exclude(pk=customer.package_id)
        field = self.fields["requested_package"]
        field.queryset = offer
        field.label_from_instance = package_label

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind == ServiceRequest.Kind.PACKAGE_CHANGE and not data.get("requested_package"):
            self.add_error("requested_package", "Choose the package you want.")
        if kind and kind != ServiceRequest.Kind.PACKAGE_CHANGE:
            data["requested_package"] = None
            if not (data.get("description") or "").strip():
                self.add_error("description", "Tell us what it is about.")
        return data


class AgentMessageForm(forms.Form):
    kind = forms.ChoiceField(
        label="It is about",
        choices=[
            (ServiceRequest.Kind.FAULT, "A fault with my power or meter"),
            (ServiceRequest.Kind.COMPLAINT, "A question or something else"),
        ],
    )
    message = forms.CharField(
        label="Your message",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


def package_label(package) -> str:
    """``Shop · 1,500 W · prepaid``: short enough for a phone's drop-down."""
    mode = "prepaid" if package.is_prepaid else "monthly bill"
    return f"{package.name} · {package.load_limit_w:,} W · {mode}"
