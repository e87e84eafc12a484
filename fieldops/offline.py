"""Forms sent from the field app, applied once whatever the network does.

The phone makes the id
----------------------
Every field-app form marked ``data-offline`` gets a hidden ``client_id`` (a UUID) from
``fieldapp.js`` when the page is shown. Offline, the browser keeps the form in IndexedDB
with that id and sends it when the connection returns; a send whose answer was lost is
sent again. So the server may see the same form twice, minutes or days apart, or twice at
the same moment from two tabs.

The server keeps one answer per id
----------------------------------
:func:`offline_safe` wraps a POST view. With a ``client_id`` in the POST it

1. claims the id by inserting a :class:`~fieldops.models.Submission` row inside a
   transaction (``client_id`` is unique: a concurrent second send waits on the first's row
   and then fails with ``IntegrityError``, so it can never apply the form a second time);
2. runs the view inside a savepoint. A redirect means the form was applied: the row
   keeps the redirect target (``result_url``) and what was made (``object_ref``, set by
   the view with :func:`applied`). Any other answer means the form was refused: the view's
   writes are rolled back and the row keeps the errors (set with :func:`rejected`);
3. answers a repeated id with the first answer and changes nothing: a redirect to the
   first result (or, for a queued send, JSON ``{"status": "duplicate", "url": …}``), or the
   first refusal's message.

A form without ``client_id`` (an old page, a desktop) runs as it always did.

Queued sends
------------
``fieldapp.js`` sends a queued form with the header ``X-Queued: 1`` and reads JSON back:
``applied`` or ``duplicate`` (remove it from the phone's queue), or ``rejected`` with the
message (keep it, listed as "needs attention" for the agent to fix and send as a new form).
A refused queued form is never dropped silently: the phone keeps it until the agent acts,
and the server keeps the refusal (see :func:`needs_attention`). The agent's fix is a new
form (a new ``client_id``) carrying ``fixes=<the refused id>``; once it is applied the
refusal is marked fixed and leaves the list. The refused id itself keeps its answer.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect

from fieldops.models import Submission
from mcoms.core import clock

QUEUED_HEADER = "X-Queued"
# A refused submission's object_ref once a later form fixed it ("fixed:<that form's id>").
FIXED_PREFIX = "fixed:"
# What the agent reads for each form's ``action``.
ACTION_LABELS = {
    "cash_payment": "Cash payment",
    "manual_reading": "Meter reading",
    "customer_register": "New customer",
    "package_change": "Package change",
    "meter_install": "Meter installation",
    "task_start": "Task started",
    "task_visit": "Task visit",
    "task_close": "Task closed",
    "task_field_job": "Field job report",
}


def client_id_of(request: HttpRequest) -> uuid.UUID | None:
    """The form's ``client_id`` as a UUID, or None when it has none (or not a valid one)."""
    raw = (request.POST.get("client_id") or "").strip()
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def is_queued(request: HttpRequest) -> bool:
    """True for a form the phone kept while offline and sends now (it wants JSON back)."""
    return request.headers.get(QUEUED_HEADER) == "1"


def applied(request: HttpRequest, object_ref: str) -> None:
    """Say what the view made (``"payment:41"``) for the submission's record."""
    request.offline_object_ref = object_ref[:60]


def rejected(request: HttpRequest, message: str) -> None:
    """Say why the view refused the form (shown to the agent with the queued form)."""
    request.offline_message = message[:500]


def form_errors(form) -> str:
    """A form's errors as one line: "Amount: Enter a number. Photo: This field is required."."""
    parts = []
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = str(field.label) if field is not None and field.label else ""
        text = " ".join(str(e) for e in errors)
        parts.append(f"{label}: {text}" if label and name != "__all__" else text)
    return " ".join(parts) or "The form has errors."


def _answer(request: HttpRequest, submission: Submission, *, first: bool) -> HttpResponse:
    """The response to a repeat of ``submission`` (or a queued send's first answer)."""
    if submission.status == Submission.Status.REJECTED:
        if is_queued(request):
            return JsonResponse(
                {"status": "rejected", "message": submission.message, "duplicate": not first},
                status=200,
            )
        messages.error(request, f"This form was not accepted earlier: {submission.message}")
        return redirect(request.path)
    url = submission.result_url or request.path
    if is_queued(request):
        return JsonResponse({"status": "applied" if first else "duplicate", "url": url})
    if not first:
        messages.info(request, "This form had already been received; nothing was added.")
    return HttpResponseRedirect(url)


def _run(view, request, args, kwargs, client_id: uuid.UUID, action: str):
    """Claim ``client_id``, run the view once, record the outcome; all in one transaction."""
    with transaction.atomic():
        submission = Submission.objects.create(
            client_id=client_id,
            user=request.user,
            action=action,
            status=Submission.Status.APPLIED,
            received_at=clock.now(),
        )
        with transaction.atomic():
            response = view(request, *args, **kwargs)
            ok = isinstance(response, HttpResponseRedirect)
            if not ok:
                transaction.set_rollback(True)  # a refused form changes nothing
        if ok:
            submission.result_url = response.url[:300]
            submission.object_ref = getattr(request, "offline_object_ref", "")
            _mark_fixed(request, client_id)
        else:
            submission.status = Submission.Status.REJECTED
            submission.message = getattr(request, "offline_message", "") or (
                "The form was not accepted; open it again to see why."
            )
        submission.save(update_fields=["status", "result_url", "object_ref", "message"])
    return submission, response


def _mark_fixed(request: HttpRequest, client_id: uuid.UUID) -> None:
    """A form sent as the fix of a refused one (``fixes``): the refusal is dealt with."""
    try:
        fixes = uuid.UUID(request.POST.get("fixes", ""))
    except ValueError:
        return
    Submission.objects.filter(
        client_id=fixes, user=request.user, status=Submission.Status.REJECTED
    ).update(object_ref=f"{FIXED_PREFIX}{client_id}")


def offline_safe(action: str) -> Callable:
    """Apply a POST at most once per ``client_id`` (see the module docstring)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            client_id = client_id_of(request) if request.method == "POST" else None
            if client_id is None:
                return view(request, *args, **kwargs)
            earlier = Submission.objects.filter(client_id=client_id).first()
            if earlier is not None:
                return _repeat(request, earlier)
            try:
                submission, response = _run(view, request, args, kwargs, client_id, action)
            except IntegrityError:
                # Another send of the same form won the race; its answer is the answer.
                earlier = Submission.objects.filter(client_id=client_id).first()
                if earlier is None:
                    raise
                return _repeat(request, earlier)
            if is_queued(request):
                return _answer(request, submission, first=True)
            return response

        return wrapper

    return decorate


def _repeat(request: HttpRequest, earlier: Submission) -> HttpResponse:
    if earlier.user_id != request.user.pk:
        # Ids are random: another person's id here is a forged or broken form.
        return JsonResponse(
            {"status": "rejected", "message": "This form belongs to someone else."}, status=409
        )
    return _answer(request, earlier, first=False)


def needs_attention(user, limit: int = 10):
    """The person's refused field-app forms, newest first (shown on the app's home page)."""
    refused = list(
        Submission.objects.filter(user=user, status=Submission.Status.REJECTED).exclude(
            object_ref__startswith=FIXED_PREFIX
        )[:limit]
    )
    for submission in refused:
        submission.label = ACTION_LABELS.get(submission.action, submission.action)
    return refused
