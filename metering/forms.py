"""Forms for the meter inventory and its lifecycle steps."""

from __future__ import annotations

from django import forms

from metering.lifecycle import Status
from metering.models import Gateway, Meter


class MeterForm(forms.Form):
    serial = forms.CharField(max_length=20, help_text="12 digits for CHINT meters")
    model = forms.ChoiceField(choices=Meter.Model.choices)
    ct_ratio = forms.DecimalField(
        initial=1, min_value=1, max_digits=8, decimal_places=2, label="CT ratio"
    )
    label = forms.CharField(max_length=200, required=False, label="Building/customer")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class AssignForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None)
    address = forms.IntegerField(min_value=1, max_value=247, label="Modbus address")
    by_name = forms.CharField(max_length=150, required=False, label="Signed by")

    def __init__(self, *args, sites=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites


class StepForm(forms.Form):
    status = forms.ChoiceField(
        choices=[c for c in Status.choices if c[0] != Status.ASSIGNED], label="Step"
    )
    gateway = forms.ModelChoiceField(
        queryset=Gateway.objects.none(), required=False, help_text="Needed when installing"
    )
    by_name = forms.CharField(max_length=150, required=False, label="Signed by")
    note = forms.CharField(max_length=500, required=False)

    def __init__(self, *args, gateways=None, steps=None, **kwargs):
        super().__init__(*args, **kwargs)
        if gateways is not None:
            self.fields["gateway"].queryset = gateways
        if steps is not None:
            self.fields["status"].choices = [(s, Status(s).label) for s in steps]


class ServeForm(forms.Form):
    account_number = forms.CharField(max_length=20, label="Customer account number")
    reason = forms.CharField(max_length=200, required=False)
