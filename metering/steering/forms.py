"""Forms of the steering pages."""

from __future__ import annotations

from django import forms

from metering.steering.models import Command, SiteSteering
from metering.steering.remote_reads import ITEMS


class NoteForm(forms.Form):
    note = forms.CharField(max_length=300, required=False)


class ForceForm(forms.Form):
    action = forms.ChoiceField(choices=Command.Action.choices)
    reason = forms.ChoiceField(choices=Command.Reason.choices)
    note = forms.CharField(max_length=300, help_text="Why you override the rules")


class FlagForm(forms.Form):
    on = forms.BooleanField(required=False)
    note = forms.CharField(max_length=300, required=False)


class ReadForm(forms.Form):
    data_item = forms.ChoiceField(choices=[(i, i) for i in ITEMS], label="Read")


class FieldJobForm(forms.Form):
    seal_number = forms.CharField(max_length=40, help_text="The number on the seal you fitted")
    photo = forms.FileField(help_text="The breaker and the seal")
    done = forms.BooleanField(label="I opened or closed the breaker as the job says")
    note = forms.CharField(max_length=300, required=False)


class SiteSteeringForm(forms.ModelForm):
    class Meta:
        model = SiteSteering
        fields = [
            "autonomy",
            "max_disconnections_per_hour",
            "work_from",
            "work_until",
            "weekdays_only",
            "reconnect_on_payment",
        ]
