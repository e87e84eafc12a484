"""A field task's life through its pages: start, visits (with and without GPS), close;
who may do what; and the phone's ``client_id`` making a repeated form count once."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers import services as customer_services
from customers.models import ServiceRequest
from fieldops import selectors, services, work
from fieldops.models import FieldTask, Submission, Visit
from mcoms.core import clock
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from metering.steering.models import FieldJob
from tests import factories
from tests.fieldops.conftest import PNG
from tests.fieldops.test_work import _field_job

T = FieldTask


@pytest.fixture
def task(field):
    customer = factories.customer(field.block_a, first_name="Amina", location="Plot 4, Kisenyi")
    with acting_as(label="test setup"):
        return services.task_create(
            site=field.block_a,
            kind=T.Kind.FIX,
            title="Fix a fault at Amina's",
            customer=customer,
            assign_to=field.agent,
        )


def url(name: str, task: FieldTask) -> str:
    return reverse(f"fieldops:{name}", args=[task.pk])


def visit_form(**fields) -> dict:
    return {"outcome": "done", "note": "", **fields}


def test_the_agent_starts_visits_with_gps_and_closes_the_task(field, task, client_for):
    agent = client_for(field.agent)
    page = agent.get(url("task", task))
    body = page.content.decode()
    assert page.status_code == 200
    assert "Fix a fault at Amina" in body and "Plot 4, Kisenyi" in body
    assert "data-offline" in body and "Use my location" in body

    assert agent.post(url("task-start", task)).status_code == 302
    task.refresh_from_db()
    assert task.status == T.Status.IN_PROGRESS

    there = (clock.now() - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    sent = visit_form(
        visited_at=there.astimezone(field.block_a.zone).strftime("%Y-%m-%dT%H:%M"),
        latitude="0.347596",
        longitude="32.582520",
        accuracy_m="12.4",
        note="Loose neutral tightened",
    )
    assert agent.post(url("task-visit", task), sent).status_code == 302
    (visit,) = task.visits.all()
    assert (visit.latitude, visit.longitude, visit.accuracy_m) == (
        D("0.347596"),
        D("32.582520"),
        12.4,
    )
    # The phone's local time is the site's (Kampala, UTC+3).
    assert visit.visited_at == there
    assert visit.agent == field.agent and visit.outcome == Visit.Outcome.DONE
    assert AuditEvent.objects.filter(object_type="fieldops.visit", object_id=visit.pk).exists()
    assert "geo:0.347596,32.582520" in agent.get(url("task", task)).content.decode()

    closed = agent.post(url("task-close", task), {"status": "done", "outcome": "Neutral fixed"})
    assert closed.status_code == 302 and closed.url == reverse("fieldops:tasks")
    task.refresh_from_db()
    assert task.status == T.Status.DONE and task.outcome == "Neutral fixed" and task.closed_at
    assert list(task.events.values_list("to_status", flat=True)) == [
        "open",
        "assigned",
        "in_progress",
        "in_progress",
        "done",
    ]


def test_a_visit_without_gps_is_kept_without_a_position(field, task, client_for):
    before = clock.now()
    response = client_for(field.agent).post(
        url("task-visit", task), visit_form(outcome="not_home", note="Nobody in")
    )
    assert response.status_code == 302
    (visit,) = task.visits.all()
    assert not visit.has_position and visit.accuracy_m is None
    assert visit.visited_at >= before  # no time from the phone: now
    task.refresh_from_db()
    assert task.status == T.Status.IN_PROGRESS  # a visit starts the task


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        ({"latitude": "95", "longitude": "32.5"}, "latitude must be a number from -90 to 90"),
        ({"latitude": "0.3", "longitude": "east"}, "longitude must be a number from -180 to 180"),
        ({"latitude": "0.3"}, "Give both latitude and longitude, or neither."),
        ({"accuracy_m": "15"}, "An accuracy needs a position."),
        (
            {"latitude": "0.3", "longitude": "32.5", "accuracy_m": "-4"},
            "accuracy must be from 0 to 10000 metres",
        ),
        ({"visited_at": "2099-12-01T10:00"}, "The visit time is in the future."),
        ({"visited_at": "2020-12-01T10:00"}, "The visit time is more than 30 days ago."),
    ],
)
def test_bad_gps_or_time_is_refused_with_a_clear_message_and_nothing_saved(
    field, task, client_for, sent, message
):
    response = client_for(field.agent).post(url("task-visit", task), visit_form(**sent))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Visit.objects.exists()
    task.refresh_from_db()
    assert task.status == T.Status.ASSIGNED


def test_a_visit_sent_twice_with_one_client_id_is_recorded_once(field, task, client_for):
    agent = client_for(field.agent)
    client_id = str(uuid.uuid4())
    form = visit_form(client_id=client_id, latitude="0.3", longitude="32.5")
    first = agent.post(url("task-visit", task), form)
    again = agent.post(url("task-visit", task), form)
    queued = agent.post(url("task-visit", task), form, headers={"X-Queued": "1"})
    assert first.status_code == again.status_code == 302 and again.url == first.url
    assert queued.json()["status"] == "duplicate"
    assert Visit.objects.count() == 1
    (submission,) = Submission.objects.all()
    assert submission.action == "task_visit" and submission.object_ref.startswith("visit:")

    # Without an id, each send is its own form.
    agent.post(url("task-visit", task), visit_form(outcome="other"))
    assert Visit.objects.count() == 2


def test_a_close_sent_twice_closes_once_and_a_refused_one_is_kept_as_refused(
    field, task, client_for
):
    agent = client_for(field.agent)
    refused_id = str(uuid.uuid4())
    refused = agent.post(url("task-close", task), {"status": "done", "client_id": refused_id})
    assert refused.status_code == 400
    assert Submission.objects.get(client_id=refused_id).status == Submission.Status.REJECTED

    form = {"status": "failed", "outcome": "Customer away", "client_id": str(uuid.uuid4())}
    agent.post(url("task-close", task), form)
    agent.post(url("task-close", task), form)
    task.refresh_from_db()
    assert task.status == T.Status.FAILED
    assert task.events.filter(to_status="failed").count() == 1


def test_who_may_see_and_act(field, task, client_for):
    assert client_for(field.outsider_agent).get(url("task", task)).status_code == 404
    # another agent of the site sees neither the task nor can act on it
    assert client_for(field.agent2).get(url("task", task)).status_code == 404
    assert client_for(field.agent2).post(url("task-start", task)).status_code == 404
    assert client_for(field.customer).get(url("task", task)).status_code == 403
    # the billing officer sees the site's tasks but does not do field work
    billing = client_for(field.billing)
    assert billing.get(url("task", task)).status_code == 200
    assert billing.post(url("task-start", task)).status_code == 403
    assert billing.post(url("task-assign", task), {"to": field.agent2.pk}).status_code == 403
    # an agent may not hand their task to someone else
    agent = client_for(field.agent)
    assert agent.post(url("task-assign", task), {"to": field.agent2.pk}).status_code == 403
    # the supervisor may act on and reassign the site's tasks
    supervisor = client_for(field.supervisor)
    assert supervisor.post(url("task-assign", task), {"to": field.agent2.pk}).status_code == 302
    task.refresh_from_db()
    assert task.assigned_to == field.agent2
    assert client_for(field.agent).get(url("task", task)).status_code == 404
    task.refresh_from_db()
    assert task.status == T.Status.ASSIGNED


def test_an_agent_takes_an_unassigned_task_of_their_site(field, client_for):
    with acting_as(label="test setup"):
        loose = services.task_create(site=field.block_a, kind=T.Kind.READ, title="Read meter")
    agent = client_for(field.agent)
    assert (
        "Read meter" in agent.get(reverse("fieldops:tasks") + "?show=unassigned").content.decode()
    )
    assert agent.post(url("task-start", loose)).status_code == 302
    loose.refresh_from_db()
    assert loose.assigned_to == field.agent and loose.status == T.Status.IN_PROGRESS


def test_my_tasks_lists_open_first_by_priority_then_due_date(field, client_for):
    at = clock.now()
    with acting_as(label="test setup"):

        def make(title, priority, due_hours):
            return services.task_create(
                site=field.block_a,
                kind=T.Kind.OTHER,
                title=title,
                priority=priority,
                due_at=at + dt.timedelta(hours=due_hours),
                assign_to=field.agent,
            )

        make("Later normal", 2, 48)
        make("Soon normal", 2, 5)
        make("Low", 3, 1)
        make("Urgent", 1, 20)
        done = make("Closed one", 1, 1)
    with acting_as(field.agent):
        services.task_close(task=done, by=field.agent, status="done", outcome="ok")
    titles = [t.title for t in selectors.my_tasks(field.agent)]
    assert titles == ["Urgent", "Soon normal", "Later normal", "Low"]
    body = client_for(field.agent).get(reverse("fieldops:tasks")).content.decode()
    assert body.index("Urgent") < body.index("Soon normal") < body.index("Low")
    assert "Closed one" not in body
    closed = client_for(field.agent).get(reverse("fieldops:tasks") + "?show=done&kind=other")
    assert "Closed one" in closed.content.decode()


def test_a_request_task_moves_the_request_along(field, client_for):
    customer = factories.customer(field.block_a, first_name="Moses")
    with acting_as(field.site_manager):
        request = customer_services.service_request_create(customer=customer, kind="fault")
    work.sync()
    task = FieldTask.objects.get(source_ref=f"request:{request.pk}")
    agent = client_for(task.assigned_to)
    agent.post(url("task-start", task))
    request.refresh_from_db()
    assert request.status == ServiceRequest.Status.IN_PROGRESS
    agent.post(url("task-close", task), {"status": "done", "outcome": "Fuse replaced"})
    request.refresh_from_db()
    assert request.status == ServiceRequest.Status.RESOLVED
    assert request.events.last().note == f"field task {task.pk}: Fuse replaced"


def test_a_field_job_task_is_finished_with_seal_and_photo_through_steering(
    field, grid, media, client_for
):
    job = _field_job(grid, field)
    work.sync()
    task = FieldTask.objects.get(source_ref=f"field_job:{job.pk}")
    agent = client_for(task.assigned_to)
    body = agent.get(url("task", task)).content.decode()
    assert "Finish the field job" in body and "Seal number" in body

    plain = agent.post(url("task-close", task), {"status": "done", "outcome": "did it"})
    assert plain.status_code == 400
    assert "Record the seal number and photo" in plain.content.decode()

    photo = SimpleUploadedFile("seal.png", PNG, content_type="image/png")
    done = agent.post(url("task-field-job", task), {"seal_number": "S-77", "photo": photo})
    assert done.status_code == 302
    job.refresh_from_db()
    task.refresh_from_db()
    assert job.status == FieldJob.Status.DONE and job.seal_number == "S-77"
    assert job.completed_by == task.assigned_to
    assert task.status == T.Status.DONE and "seal S-77" in task.outcome


def test_a_supervisor_cancels_a_task_with_a_reason(field, task, client_for):
    supervisor = client_for(field.supervisor)
    supervisor.post(url("task-cancel", task), {"note": ""})
    task.refresh_from_db()
    assert task.is_open
    supervisor.post(url("task-cancel", task), {"note": "Duplicate of another job"})
    task.refresh_from_db()
    assert task.status == T.Status.CANCELLED and task.outcome == "Duplicate of another job"
    assert client_for(field.agent).post(url("task-cancel", task), {"note": "x"}).status_code == 403
