"""Steering pages: commands (approve / reject), a meter's relay and overrides, field jobs."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to
from metering import selectors as meter_selectors
from metering.steering import codes, remote_reads, services
from metering.steering.forms import (
    FieldJobForm,
    FlagForm,
    ForceForm,
    NoteForm,
    ReadForm,
    SiteSteeringForm,
)
from metering.steering.models import (
    Command,
    CriticalLoad,
    FieldJob,
    MeterOverride,
    MeterState,
    RemoteRead,
    SiteSteering,
)

S = Command.Status
IN_FLIGHT = (S.WAITING, S.SENDING, S.SENT, S.CONFIRMING, S.FIELD)


def _errors(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


def _commands(request: HttpRequest):
    return Command.objects.filter(site__in=sites_visible_to(request.user)).select_related(
        "meter", "site", "customer", "approved_by"
    )


@login_required
def command_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    commands = _commands(request)
    if request.GET.get("site"):
        commands = commands.filter(site_id=request.GET["site"])
    editable = {
        site.pk for site in sites_visible_to(request.user) if request.user.can(Cap.METERS_EDIT)
    }
    context = {
        "pending": commands.filter(status=S.PENDING_APPROVAL).order_by("created_at"),
        "in_flight": commands.filter(status__in=IN_FLIGHT).order_by("created_at"),
        "finished": commands.exclude(status__in=(S.PENDING_APPROVAL, *IN_FLIGHT)).order_by(
            "-finished_at", "-id"
        )[:50],
        "editable": editable,
        "sites": sites_visible_to(request.user),
    }
    return render(request, "steering/commands.html", context)


@login_required
@require_POST
def command_approve(request: HttpRequest, pk: int) -> HttpResponse:
    command = get_object_or_404(_commands(request), pk=pk)
    require(request.user, Cap.METERS_EDIT, command.site_id)
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        services.approve(command=command, by=request.user, note=note)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(
            request, f"Approved: {command.get_action_display().lower()} {command.meter.serial}."
        )
    return redirect("steering:commands")


@login_required
@require_POST
def command_reject(request: HttpRequest, pk: int) -> HttpResponse:
    command = get_object_or_404(_commands(request), pk=pk)
    require(request.user, Cap.METERS_EDIT, command.site_id)
    form = NoteForm(request.POST)
    try:
        services.reject(
            command=command,
            by=request.user,
            note=form.cleaned_data["note"] if form.is_valid() else "",
        )
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(
            request, f"Rejected: {command.get_action_display().lower()} {command.meter.serial}."
        )
    return redirect("steering:commands")


def _meter(request: HttpRequest, pk: int):
    return get_object_or_404(meter_selectors.meters_visible_to(request.user), pk=pk)


@login_required
def meter_page(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    meter = _meter(request, pk)
    state = MeterState.objects.filter(meter=meter).select_related("concentrator").first()
    can_edit = can_on_site(request.user, Cap.METERS_EDIT, meter.site_id)
    context = {
        "meter": meter,
        "state": state,
        "code": codes.decode(state.status_code) if state and state.status_code else None,
        "customer": meter_selectors.current_customer(meter),
        "critical": CriticalLoad.objects.filter(meter=meter).first(),
        "override": MeterOverride.objects.filter(meter=meter).first(),
        "commands": Command.objects.filter(meter=meter).select_related("approved_by")[:20],
        "reads": RemoteRead.objects.filter(meter=meter)[:10],
        "can_edit": can_edit,
        "force_form": ForceForm() if can_edit else None,
        "read_form": ReadForm() if can_edit and meter.model == "CALIN" else None,
    }
    return render(request, "steering/meter.html", context)


@login_required
@require_POST
def meter_critical(request: HttpRequest, pk: int) -> HttpResponse:
    meter = _meter(request, pk)
    require(request.user, Cap.METERS_EDIT, meter.site_id)
    form = FlagForm(request.POST)
    if form.is_valid():
        services.set_critical(
            meter=meter,
            critical=form.cleaned_data["on"],
            by=request.user,
            note=form.cleaned_data["note"],
        )
        messages.success(request, "Critical-load flag saved.")
    return redirect("steering:meter", pk=pk)


@login_required
@require_POST
def meter_block(request: HttpRequest, pk: int) -> HttpResponse:
    meter = _meter(request, pk)
    require(request.user, Cap.METERS_EDIT, meter.site_id)
    form = FlagForm(request.POST)
    if form.is_valid():
        try:
            services.block_automation(
                meter=meter,
                blocked=form.cleaned_data["on"],
                by=request.user,
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            _errors(request, exc)
        else:
            messages.success(
                request,
                "Automation blocked on this meter."
                if form.cleaned_data["on"]
                else "Automation allowed again.",
            )
    return redirect("steering:meter", pk=pk)


@login_required
@require_POST
def meter_force(request: HttpRequest, pk: int) -> HttpResponse:
    meter = _meter(request, pk)
    require(request.user, Cap.METERS_EDIT, meter.site_id)
    form = ForceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an action and a reason, and say why you override.")
        return redirect("steering:meter", pk=pk)
    try:
        command = services.force(meter=meter, by=request.user, **form.cleaned_data)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(
            request,
            f"{command.get_action_display()} forced: {command.get_status_display().lower()}.",
        )
    return redirect("steering:meter", pk=pk)


@login_required
@require_POST
def meter_read(request: HttpRequest, pk: int) -> HttpResponse:
    meter = _meter(request, pk)
    require(request.user, Cap.METERS_EDIT, meter.site_id)
    form = ReadForm(request.POST)
    if form.is_valid() and meter.model == "CALIN":
        read = remote_reads.request(meter, form.cleaned_data["data_item"], by=request.user)
        if read.status == RemoteRead.Status.FAILED:
            messages.error(request, f"The head-end did not take the read: {read.error}")
        else:
            messages.success(
                request,
                f"Asked the meter for {read.data_item}; the answer "
                "appears here within a few minutes.",
            )
    return redirect("steering:meter", pk=pk)


def _jobs(request: HttpRequest):
    return FieldJob.objects.filter(site__in=sites_visible_to(request.user)).select_related(
        "meter", "site", "command", "completed_by"
    )


@login_required
def field_job_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    jobs = _jobs(request)
    return render(
        request,
        "steering/field_jobs.html",
        {
            "open": jobs.filter(status=FieldJob.Status.OPEN).order_by("created_at"),
            "closed": jobs.exclude(status=FieldJob.Status.OPEN).order_by("-created_at")[:50],
        },
    )


@login_required
def field_job_page(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    job = get_object_or_404(_jobs(request), pk=pk)
    can_do = can_on_site(request.user, Cap.METERS_FIELD, job.site_id)
    form = None
    if job.status == FieldJob.Status.OPEN and can_do:
        form = FieldJobForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.field_job_complete(
                    job=job,
                    by=request.user,
                    seal_number=form.cleaned_data["seal_number"],
                    photo=form.cleaned_data["photo"],
                    note=form.cleaned_data["note"],
                )
            except ValidationError as exc:
                _errors(request, exc)
            else:
                messages.success(request, f"Field job {job.pk} recorded as done.")
                return redirect("steering:field_jobs")
    elif request.method == "POST":
        require(request.user, Cap.METERS_FIELD, job.site_id)
    return render(
        request,
        "steering/field_job.html",
        {
            "job": job,
            "form": form,
            "can_cancel": job.status == FieldJob.Status.OPEN
            and can_on_site(request.user, Cap.METERS_EDIT, job.site_id),
        },
    )


@login_required
@require_POST
def field_job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(_jobs(request), pk=pk)
    require(request.user, Cap.METERS_EDIT, job.site_id)
    form = NoteForm(request.POST)
    try:
        services.field_job_cancel(
            job=job, by=request.user, note=form.cleaned_data["note"] if form.is_valid() else ""
        )
    except ValidationError as exc:
        _errors(request, exc)
        return redirect("steering:field_job", pk=pk)
    messages.success(request, f"Field job {job.pk} cancelled.")
    return redirect("steering:field_jobs")


@login_required
def site_settings(request: HttpRequest, site_pk: int) -> HttpResponse:
    site = get_object_or_404(sites_visible_to(request.user), pk=site_pk)
    require(request.user, Cap.METERS_EDIT, site.pk)
    instance = SiteSteering.for_site(site)
    form = SiteSteeringForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        services.site_settings_save(settings=form.save(commit=False), by=request.user)
        messages.success(request, f"Steering rules of {site} saved.")
        return redirect("steering:commands")
    return render(request, "form.html", {"form": form, "title": f"Steering rules: {site}"})
