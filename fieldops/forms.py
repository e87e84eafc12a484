"""Forms of the field agent app: small, labelled, and checked again by the services."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from mcoms.core import clock

PHONE_ATTRS = {"inputmode": "tel", "autocomplete": "off", "placeholder": "0772 123456"}


class CashForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount received",
        min_value=Decimal("0.01"),
        decimal_places=2,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "any"}),
    )
    note = forms.CharField(label="Note (optional)", required=False, max_length=300)


class ReadingForm(forms.Form):
    energy_kwh = forms.DecimalField(
        label="Register shows (kWh)",
        min_value=Decimal(0),
        decimal_places=3,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "any"}),
    )
    read_at = forms.DateTimeField(
        label="Read at",
        help_text="The phone's time when you read the display",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
    photo = forms.ImageField(
        label="Photo of the display",
        widget=forms.ClearableFileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )
    review = forms.BooleanField(
        label="The display really shows this: send it for review",
        required=False,
    )
    note = forms.CharField(label="Note (optional)", required=False, max_length=300)

    def __init__(self, *args, zone=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        if not self.is_bound and zone is not None:
            self.initial.setdefault("read_at", clock.now().astimezone(zone).replace(tzinfo=None))
            # A page kept by the phone is older than the moment it is opened: the phone's
            # clock fills the time when the form is shown (fieldapp.js).
            self.fields["read_at"].widget.attrs["data-now"] = str(zone)

    def clean_read_at(self):
        value = self.cleaned_data["read_at"]
        if self.zone is not None:
            # The agent types the site's local time.
            value = value.replace(tzinfo=None).replace(tzinfo=self.zone)
        return value


class RegisterForm(forms.Form):
    site = forms.ModelChoiceField(label="Site", queryset=None, empty_label=None)
    first_name = forms.CharField(label="First name", max_length=100)
    last_name = forms.CharField(label="Last name", max_length=100)
    phone = forms.CharField(label="Phone", max_length=30, widget=forms.TextInput(PHONE_ATTRS))
    location = forms.CharField(label="Location (village, plot)", max_length=200, required=False)
    id_number = forms.CharField(
        label="ID document number (optional)", max_length=40, required=False
    )
    package = forms.ModelChoiceField(
        label="Package", queryset=None, required=False, empty_label="Choose later"
    )
    phone_ok = forms.BooleanField(
        label="Yes, this phone is shared with another account", required=False
    )

    def __init__(self, *args, sites, packages, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        self.fields["package"].queryset = packages
        if sites.count() > 1:
            self.fields["site"].empty_label = "Choose the site"


class PackageForm(forms.Form):
    package = forms.ModelChoiceField(
        label="New package", queryset=None, empty_label=None, widget=forms.RadioSelect
    )
    note = forms.CharField(label="Why (optional)", required=False, max_length=300)

    def __init__(self, *args, packages, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["package"].queryset = packages


class InstallForm(forms.Form):
    serial = forms.CharField(
        label="Serial on the meter",
        max_length=20,
        help_text="Type the serial printed on the meter, or scan its barcode",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    address_label = forms.IntegerField(
        label="Address on the label",
        min_value=1,
        max_value=247,
        help_text="The Modbus address written on the meter's label",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    gateway = forms.ModelChoiceField(label="Wired to the bus of", queryset=None, empty_label=None)
    photo = forms.ImageField(
        label="Photo of the installed meter (optional)",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )
    note = forms.CharField(label="Note (optional)", required=False, max_length=300)

    def __init__(self, *args, meter, gateways, **kwargs):
        super().__init__(*args, **kwargs)
        self.meter = meter
        self.fields["gateway"].queryset = gateways

    def clean_serial(self):
        typed = "".join(self.cleaned_data["serial"].split())
        if typed != self.meter.serial:
            raise forms.ValidationError(
                f"The serial {typed} is not this meter's ({self.meter.serial}). "
                "Check you have the right meter in your hand."
            )
        return typed

    def clean_address_label(self):
        label = self.cleaned_data["address_label"]
        if label != self.meter.modbus_address:
            raise forms.ValidationError(
                f"The label says {label} but this meter is planned at address "
                f"{self.meter.modbus_address}. Do not install it: call your supervisor."
            )
        return label
