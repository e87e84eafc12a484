"""The field app's task pages: "My tasks", a task's page, and its status and visit forms.

Small pages for a 360 px phone on a slow connection: no images but the agent's own
uploads, one stylesheet. Each form that changes a task is marked ``data-offline`` in the
template and wrapped in :func:`fieldops.offline.offline_safe`, so a form the phone sends
twice (a lost answer, a queue replayed after a day offline) is applied once; without a
``client_id`` it simply runs. A view answers a redirect when it applied the form and the
task page with the errors otherwise (that is how ``offline_safe`` tells them apart).
The writes are :mod:`fieldops.services`', which check who may act and audit each step.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from fieldops import offline, selectors, services
from fieldops.models import FieldTask, Visit
from mcoms.core.roles import Cap

LABELS = {value: label.split(" (")[0].lower() for value, label in FieldTask.Status.choices}
SHOW = (
    ("open", "My open tasks"),
    ("unassigned", "Not yet assigned"),
    ("done", "My closed tasks"),
    ("all", "All I can see"),
)


class VisitForm(forms.Form):
    visited_at = forms.DateTimeField(
        label="When you were there",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        help_text="Empty: now",
    )
    outcome = forms.ChoiceField(label="How it went", choices=Visit.Outcome.choices)
    note = forms.CharField(label="Note (optional)", required=False, max_length=500)
    latitude = forms.CharField(label="Latitude", required=False, max_length=20)
    longitude = forms.CharField(label="Longitude", required=False, max_length=20)
    accuracy_m = forms.CharField(label="GPS accuracy (metres)", required=False, max_length=12)
    photo = forms.FileField(label="Photo (optional)", required=False)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "visit_%s")  # ids apart from the other forms on the page
        super().__init__(*args, **kwargs)
        for name in ("latitude", "longitude", "accuracy_m"):
            self.fields[name].widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})
        self.fields["photo"].widget.attrs["accept"] = "image/*"


class CloseForm(forms.Form):
    status = forms.ChoiceField(
        label="Result",
        choices=[(FieldTask.Status.DONE, "Done"), (FieldTask.Status.FAILED, "Could not be done")],
    )
    outcome = forms.CharField(label="What was done, or why not", max_length=300)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "close_%s")
        super().__init__(*args, **kwargs)


class FieldJobForm(forms.Form):
    seal_number = forms.CharField(label="Seal number", max_length=40)
    photo = forms.FileField(label="Photo of the breaker and seal")
    note = forms.CharField(label="Note (optional)", required=False, max_length=300)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "job_%s")
        super().__init__(*args, **kwargs)
        self.fields["photo"].widget.attrs["accept"] = "image/*"


class AssignForm(forms.Form):
    to = forms.IntegerField(required=False)


def _field_user(request: HttpRequest) -> None:
    if not request.user.can(Cap.METERS_VIEW):
        raise PermissionDenied


def _task(request: HttpRequest, pk: int) -> FieldTask:
    _field_user(request)
    return get_object_or_404(selectors.tasks_visible_to(request.user), pk=pk)


def layout() -> str:
    """The field app's frame (offline queue, its menu) when it is there, else the plain one."""
    return "fieldops/app/base.html" if _link("fieldops:queue") else "fieldops/tasks/_plain.html"


def _messages(exc: ValidationError) -> str:
    return " ".join(exc.messages)


# --- pages ----------------------------------------------------------------------------------


@login_required
def task_list(request: HttpRequest) -> HttpResponse:
    """My tasks: open first, by priority and due date; filters by list and kind."""
    _field_user(request)
    show = request.GET.get("show", "open")
    if show not in dict(SHOW):
        show = "open"
    kind = request.GET.get("kind", "")
    if kind not in FieldTask.Kind.values:
        kind = ""
    tasks = selectors.my_tasks(request.user, show=show, kind=kind)[:100]
    return render(
        request,
        "fieldops/tasks/list.html",
        {
            "tasks": tasks,
            "show": show,
            "kind": kind,
            "shows": SHOW,
            "kinds": FieldTask.Kind.choices,
            "unassigned": selectors.my_tasks(request.user, show="unassigned").count(),
            "perms_team": request.user.can(Cap.REQUESTS_HANDLE),
            "layout": layout(),
        },
    )


def _link(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _where(task: FieldTask) -> dict:
    """The map position: the customer's when known, else the last visit with GPS."""
    customer = task.customer
    if customer is not None and customer.latitude is not None and customer.longitude is not None:
        return {"lat": customer.latitude, "lon": customer.longitude, "from": "customer's address"}
    visit = task.visits.filter(latitude__isnull=False, longitude__isnull=False).first()
    if visit is not None:
        return {"lat": visit.latitude, "lon": visit.longitude, "from": "last visit"}
    return {}


def _page(request: HttpRequest, task: FieldTask, status: int = 200, **forms_) -> HttpResponse:
    user = request.user
    can_act = task.is_open and services.may_act(user, task)
    job = services.field_job_of(task) if task.source == FieldTask.Source.FIELD_JOB else None
    context = {
        "task": task,
        "can_act": can_act,
        "can_manage": task.is_open and services.may_manage(user, task.site_id),
        "visit_form": forms_.get("visit_form") or VisitForm(),
        "close_form": forms_.get("close_form") or CloseForm(),
        "job": job,
        "job_form": forms_.get("job_form")
        or (FieldJobForm() if job and job.status == "open" else None),
        "people": services.assignable_people(task.site) if task.is_open else [],
        "visits": task.visits.select_related("agent"),
        "events": [
            (e, LABELS.get(e.from_status, "new"), LABELS.get(e.to_status, e.to_status))
            for e in task.events.all()
        ],
        "where": _where(task),
        "install_url": _link("fieldops:install", task.meter_id)
        if task.kind == FieldTask.Kind.INSTALL and task.meter_id
        else "",
        "pay_url": (
            _link("fieldops:pay", task.customer_id)
            or _link("payments:field-customer", task.customer_id)
        )
        if task.kind == FieldTask.Kind.COLLECT and task.customer_id
        else "",
        "customer_url": (
            _link("fieldops:customer", task.customer_id)
            or _link("customers:detail", task.customer_id)
        )
        if task.customer_id
        else "",
        "layout": layout(),
    }
    return render(request, "fieldops/tasks/detail.html", context, status=status)


@login_required
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """What, where, the status buttons, the visit form and the task's history."""
    return _page(request, _task(request, pk))


def _refused(request: HttpRequest, task: FieldTask, message: str, **forms_) -> HttpResponse:
    offline.rejected(request, message)
    messages.error(request, message)
    task.refresh_from_db()
    return _page(request, task, status=400, **forms_)


# --- forms ----------------------------------------------------------------------------------


@login_required
@require_POST
@offline.offline_safe("task_start")
def task_start(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task(request, pk)
    try:
        services.task_start(task=task, by=request.user)
    except ValidationError as exc:
        return _refused(request, task, _messages(exc))
    offline.applied(request, f"task:{task.pk}")
    messages.success(request, "Started. Record your visit when you are there.")
    return redirect("fieldops:task", pk=task.pk)


def _visited_at(value: dt.datetime | None, task: FieldTask) -> dt.datetime | None:
    """The phone sends its local time without a zone: it is the site's."""
    if value is None:
        return None
    if timezone.is_naive(value):
        return value.replace(tzinfo=task.site.zone)
    return value


@login_required
@require_POST
@offline.offline_safe("task_visit")
def task_visit(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task(request, pk)
    form = VisitForm(request.POST, request.FILES)
    if not form.is_valid():
        return _refused(request, task, offline.form_errors(form), visit_form=form)
    data = form.cleaned_data
    try:
        visit = services.visit_record(
            task=task,
            by=request.user,
            visited_at=_visited_at(data["visited_at"], task),
            outcome=data["outcome"],
            note=data["note"],
            latitude=data["latitude"],
            longitude=data["longitude"],
            accuracy_m=data["accuracy_m"],
            photo=data["photo"],
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for name, errors in exc.error_dict.items():
                form.add_error(name if name in form.fields else None, errors)
        else:
            form.add_error(None, exc)
        return _refused(request, task, _messages(exc), visit_form=form)
    offline.applied(request, f"visit:{visit.pk}")
    messages.success(request, "Visit recorded.")
    return redirect("fieldops:task", pk=task.pk)


@login_required
@require_POST
@offline.offline_safe("task_close")
def task_close(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task(request, pk)
    form = CloseForm(request.POST)
    if not form.is_valid():
        return _refused(request, task, offline.form_errors(form), close_form=form)
    try:
        services.task_close(
            task=task,
            by=request.user,
            status=form.cleaned_data["status"],
            outcome=form.cleaned_data["outcome"],
        )
    except ValidationError as exc:
        return _refused(request, task, _messages(exc), close_form=form)
    offline.applied(request, f"task:{task.pk}")
    task.refresh_from_db()
    messages.success(request, f"Task closed: {task.get_status_display().lower()}.")
    return redirect("fieldops:tasks")


@login_required
@require_POST
@offline.offline_safe("task_field_job")
def task_field_job(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task(request, pk)
    form = FieldJobForm(request.POST, request.FILES)
    if not form.is_valid():
        return _refused(request, task, offline.form_errors(form), job_form=form)
    try:
        services.task_complete_field_job(
            task=task,
            by=request.user,
            seal_number=form.cleaned_data["seal_number"],
            photo=form.cleaned_data["photo"],
            note=form.cleaned_data["note"],
        )
    except ValidationError as exc:
        return _refused(request, task, _messages(exc), job_form=form)
    offline.applied(request, f"task:{task.pk}")
    messages.success(request, "Field job recorded; task done.")
    return redirect("fieldops:tasks")


@login_required
@require_POST
def task_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Assign (supervisors), or take an unassigned task (agents); back to where it came from."""
    task = _task(request, pk)
    form = AssignForm(request.POST)
    to = None
    if form.is_valid() and form.cleaned_data["to"]:
        to = services.assignable_people(task.site).filter(pk=form.cleaned_data["to"]).first()
        if to is None:
            messages.error(request, "Choose a field agent of the site.")
            return redirect(_back(request, task))
    try:
        services.task_assign(task=task, to=to, by=request.user)
    except ValidationError as exc:
        messages.error(request, _messages(exc))
    else:
        who = (to.get_full_name() or to.get_username()) if to else "nobody"
        messages.success(request, f"Task {task.pk} assigned to {who}.")
    return redirect(_back(request, task))


@login_required
@require_POST
def task_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    task = _task(request, pk)
    try:
        services.task_cancel(task=task, by=request.user, note=request.POST.get("note", ""))
    except ValidationError as exc:
        messages.error(request, _messages(exc))
        return redirect("fieldops:task", pk=task.pk)
    messages.success(request, f"Task {task.pk} cancelled.")
    return redirect("fieldops:tasks")


def _back(request: HttpRequest, task: FieldTask) -> str:
    nxt = request.POST.get("next", "")
    if nxt.startswith("/") and not nxt.startswith("//"):
        return nxt
    return reverse("fieldops:task", args=[task.pk])
