"""Forms of the collections pages."""

from __future__ import annotations

import datetime as dt

from django import forms

DATE = forms.DateInput(attrs={"type": "date"})


class StatementForm(forms.Form):
    """A date range for a statement (both days included)."""

    start = forms.DateField(label="From", widget=DATE)
    end = forms.DateField(label="To", widget=DATE)

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            raise forms.ValidationError("The end date is before the start date.")
        if start and end and (end - start).days > 3660:
            raise forms.ValidationError("Ask for ten years at most.")
        return data


class AsOfForm(forms.Form):
    as_of = forms.DateField(label="As of", required=False, widget=DATE)


class CloseMonthForm(forms.Form):
    month = forms.CharField(widget=forms.HiddenInput)
    confirm = forms.BooleanField(
        label="I have checked the trial balance; close this month for good",
        required=True,
    )

    def clean_month(self) -> dt.date:
        text = self.cleaned_data["month"]
        try:
            return dt.datetime.strptime(text.strip(), "%Y-%m").date()
        except ValueError as exc:
            raise forms.ValidationError("Give the month as 2026-03.") from exc


class PayForm(forms.Form):
    """Pay by mobile money from the portal: how much and from which phone."""

    amount = forms.DecimalField(min_value=1, max_digits=18, decimal_places=2)
    phone = forms.CharField(max_length=20, help_text="The mobile-money number to pay from")
