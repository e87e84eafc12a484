"""Forms of the plant pages: the field agent's plant log (phone-first) and plant assets."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from mcoms.core import clock
from metering.plant.models import PlantAsset, PlantSettings

MAX_PHOTO_BYTES = 8 * 1024 * 1024


def _figure(label: str, places: int, **limits) -> forms.DecimalField:
    """An optional, non-negative figure read off a display, typed on a phone's number pad."""
    step = "0." + "0" * (places - 1) + "1"
    return forms.DecimalField(
        label=label,
        required=False,
        min_value=0,
        decimal_places=places,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": step}),
        **limits,
    )


class PlantLogForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None, empty_label=None)
    read_at = forms.DateTimeField(
        label="Read at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    pv_kwh_today = _figure("PV generation today (kWh)", 2, max_digits=10)
    battery_soc_pct = _figure("Battery state of charge (%)", 1, max_value=100)
    battery_voltage_v = _figure("Battery voltage (V)", 2, max_value=1000)
    generator_hours = _figure("Generator run-hour counter (h)", 1)
    fuel_added_l = _figure("Fuel added (litres)", 1, max_value=10000)
    photo = forms.FileField(
        label="Photo of the display",
        widget=forms.ClearableFileInput(attrs={"accept": "image/*", "capture": "environment"}),
    )
    note = forms.CharField(label="Note", required=False, max_length=300)

    def __init__(self, *args, sites, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites
        if not self.is_bound:
            now = clock.now()
            first = sites.first()
            zone = first.zone if first else None
            self.initial.setdefault("read_at", now.astimezone(zone) if zone else now)

    def clean_photo(self):
        photo = self.cleaned_data["photo"]
        if photo.size > MAX_PHOTO_BYTES:
            raise forms.ValidationError("The photo is larger than 8 MB; take it again smaller.")
        kind = (getattr(photo, "content_type", "") or "").lower()
        if kind and not kind.startswith("image/"):
            raise forms.ValidationError("The photo must be an image.")
        return photo

    def clean(self):
        data = super().clean()
        values = ("pv_kwh_today", "battery_soc_pct", "battery_voltage_v", "generator_hours")
        if not any(data.get(v) is not None for v in (*values, "fuel_added_l")):
            raise forms.ValidationError("Enter at least one value read from the displays.")
        site, read_at = data.get("site"), data.get("read_at")
        if site and read_at:
            # The phone sends the time on the site's clock, without a zone: Django read it in
            # the server's zone; keep the wall-clock time and give it the site's zone.
            wall = timezone.make_naive(read_at) if timezone.is_aware(read_at) else read_at
            data["read_at"] = wall.replace(tzinfo=site.zone)
        return data


class AssetForm(forms.ModelForm):
    class Meta:
        model = PlantAsset
        fields = [
            "kind",
            "name",
            "source",
            "make_model",
            "kwp",
            "rated_kw",
            "capacity_kwh",
            "chemistry",
            "meter",
            "openems_component",
            "notes",
        ]

    def __init__(self, *args, site, **kwargs):
        super().__init__(*args, **kwargs)
        from metering.models import Meter

        self.fields["meter"].queryset = Meter.objects.filter(site=site).order_by(
            "modbus_address", "serial"
        )
        self.fields["meter"].required = False

    def clean(self):
        data = super().clean()
        if data.get("kind") == PlantAsset.Kind.SUPPLY_METER and not data.get("meter"):
            raise forms.ValidationError(
                "A main/feeder meter needs the meter on the bus it is: choose it."
            )
        return data


class PlantSettingsForm(forms.ModelForm):
    class Meta:
        model = PlantSettings
        fields = [
            "losses_threshold_pct",
            "battery_floor_pct",
            "silent_after_minutes",
            "daylight_start_hour",
            "daylight_end_hour",
        ]
