"""The field agent app's meter pages: a reading by hand with a photo, and the install checklist.

Installing a meter
------------------
A meter reaches a site planned at a Modbus address (Assigned → Converted → Shipped). On
the pole the agent confirms, before anything is recorded, that the meter in hand is the
one on the plan: the serial they type (or scan) must be the meter's, and the address
written on its label must be the planned one. A wrong serial or label is refused with
what to do; nothing moves. "Mark installed" then goes through
``metering.commissioning.bus_install``, the same step as the commissioning portal: the
meter becomes Installed on the chosen gateway's bus (signed, dated, audited), the bus's
config version moves, the Pi starts polling the address, and the first valid readings
commission it.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from fieldops import offline
from fieldops.app_views import meter_for_field
from fieldops.forms import InstallForm, ReadingForm
from mcoms.core import clock
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site
from metering import commissioning, manual_reads
from metering.lifecycle import Status
from metering.selectors import current_customer, gateways_visible_to, meters_visible_to


def _errors_into(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
@offline.offline_safe("manual_reading")
def read(request: HttpRequest, pk: int) -> HttpResponse:
    meter = meter_for_field(request, pk)
    zone = meter.site.zone
    form = ReadingForm(request.POST or None, request.FILES or None, zone=zone)
    customer = current_customer(meter)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                manual = manual_reads.record_manual_reading(
                    meter=meter,
                    read_at=data["read_at"],
                    energy_kwh=data["energy_kwh"],
                    photo=data["photo"],
                    by=request.user,
                    note=data["note"],
                    review=data["review"],
                )
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                offline.applied(request, f"manual_reading:{manual.pk}")
                if manual.flags:
                    messages.warning(
                        request,
                        f"Reading {manual.energy_kwh} kWh saved and sent for review: "
                        f"{manual.flags}.",
                    )
                else:
                    messages.success(
                        request, f"Reading {manual.energy_kwh} kWh stored for meter {meter.serial}."
                    )
                if customer is not None:
                    return redirect("fieldops:customer", pk=customer.pk)
                return redirect("fieldops:home")
        offline.rejected(request, offline.form_errors(form))
    context = {
        "meter": meter,
        "customer": customer,
        "form": form,
        "recent": manual_reads.manual_readings_of(meter, 3),
        "zone_name": meter.site.timezone,
    }
    return render(request, "fieldops/app/read.html", context)


def meters_to_install(user):
    """Meters on the person's sites waiting to be put on a bus (shipped first)."""
    return (
        meters_visible_to(user)
        .filter(status__in=commissioning.READY_FOR_BUS, modbus_address__isnull=False)
        .exclude(site__isnull=True)
        .order_by("-status", "site__name", "modbus_address")
    )


@login_required
def installs(request: HttpRequest) -> HttpResponse:
    meters = [
        m
        for m in meters_to_install(request.user).filter(status=Status.SHIPPED)[:50]
        if can_on_site(request.user, Cap.METERS_FIELD, m.site_id)
    ]
    waiting = meters_visible_to(request.user).filter(status=Status.INSTALLED)[:20]
    return render(request, "fieldops/app/installs.html", {"meters": meters, "waiting": waiting})


def _save_photo(meter, photo) -> str:
    stamp = clock.now().strftime("%Y%m%d-%H%M%S")
    return default_storage.save(f"fieldops/installs/{meter.pk}/{stamp}-{photo.name}", photo)


@login_required
@offline.offline_safe("meter_install")
def install(request: HttpRequest, pk: int) -> HttpResponse:
    meter = meter_for_field(request, pk)
    gateways = gateways_visible_to(request.user).filter(site=meter.site_id)
    form = InstallForm(request.POST or None, request.FILES or None, meter=meter, gateways=gateways)
    # Only a meter converted in the workshop (address written, label on) and shipped.
    ready = meter.status == Status.SHIPPED and meter.modbus_address is not None
    if request.method == "POST":
        if not ready:
            form.add_error(
                None, f"Meter {meter.serial} is {meter.get_status_display().lower()} already."
            )
        elif form.is_valid():
            data = form.cleaned_data
            note = "installed from the field app: serial and address label checked"
            if data["photo"]:
                note += f"; photo {_save_photo(meter, data['photo'])}"
            if data["note"]:
                note += f"; {data['note']}"
            try:
                meter = commissioning.bus_install(
                    gateway=data["gateway"],
                    meter=meter,
                    by_name=request.user.get_full_name() or request.user.get_username(),
                    note=note,
                )
            except ValidationError as exc:
                _errors_into(form, exc)
            else:
                offline.applied(request, f"meter:{meter.pk}")
                messages.success(
                    request,
                    f"Meter {meter.serial} installed on {data['gateway'].name} at address "
                    f"{meter.modbus_address}. It is commissioned when the gateway reads it.",
                )
                return redirect("fieldops:installs")
        offline.rejected(request, offline.form_errors(form))
    context = {"meter": meter, "form": form, "ready": ready, "gateways": gateways}
    return render(request, "fieldops/app/install.html", context)
