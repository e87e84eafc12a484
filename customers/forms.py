"""Forms for registering and editing customers and their requests."""

from __future__ import annotations

from django import forms

from customers.models import Customer, ServiceRequest
from mcoms.core.selectors import staff_of_site


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = [
            "site",
            "first_name",
            "last_name",
            "phone",
            "alt_phone",
            "email",
            "id_number",
            "location",
            "latitude",
            "longitude",
            "package",
            "language",
            "critical_load",
            "critical_load_note",
        ]
        widgets = {
            "phone": forms.TextInput(attrs={"inputmode": "tel", "placeholder": "0772 123456"}),
            "alt_phone": forms.TextInput(attrs={"inputmode": "tel"}),
        }

    def __init__(self, *args, sites=None, **kwargs):
        super().__init__(*args, **kwargs)
        if sites is not None:
            self.fields["site"].queryset = sites
        # Packages come through the string foreign key; only those on offer are offered.
        self.fields["package"].queryset = self.fields["package"].queryset.filter(active=True)
        if self.instance.pk:
            self.fields["site"].disabled = True
        # Phones are normalised by the service, not by the model field's max length.
        for name in ("phone", "alt_phone"):
            self.fields[name].max_length = 30
            self.fields[name].widget.attrs["maxlength"] = 30

    def _post_clean(self):
        # Validation happens in the service (phone normalisation, model checks).
        pass


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Customer.Status.choices)
    reason = forms.CharField(max_length=300, required=False)


class ServiceRequestForm(forms.ModelForm):
    class Meta:
        model = ServiceRequest
        fields = ["kind", "description", "requested_package"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        packages = self.fields["requested_package"].queryset
        self.fields["requested_package"].queryset = packages.filter(active=True)
        self.fields["requested_package"].required = False

    def _post_clean(self):
        pass


class RequestAssignForm(forms.Form):
    """Who handles a request, chosen among the staff of its site, and by when."""

    assigned_to = forms.ModelChoiceField(queryset=None, required=False, label="Assign to")
    due_on = forms.DateField(required=False, label="Due by")

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assigned_to"].queryset = staff_of_site(site)


class RequestStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ServiceRequest.Status.choices)
    note = forms.CharField(max_length=500, required=False)
