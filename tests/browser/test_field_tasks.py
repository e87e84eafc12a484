"""Field tasks in headless Chromium on a 360 px phone: the agent's day and the supervisor's page.

The agent opens My tasks, opens a task, lets the phone fill the GPS position ("Use my
location", with the browser's geolocation granted and set), records the visit and marks
the task done. The supervisor opens the team page, assigns an unassigned task, previews a
message to the team and sends it. Every page passes ``Screen.check`` and is saved under
``var/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.browser

POSITION = {"latitude": 0.347596, "longitude": 32.58252, "accuracy": 14}


@dataclass
class Tasks:
    fix: object
    loose: object


@pytest.fixture
def field_tasks(site_data) -> Tasks:
    """Block A: a fault at Grace's for ``agent``, and a hand-read nobody has yet."""
    from fieldops import services
    from fieldops.models import FieldTask
    from mcoms.core import clock
    from mcoms.core.audit import acting_as

    org = site_data.org
    for name, phone in (("agent", "+256770000201"), ("supervisor", "+256770000203")):
        org.users[name].phone = phone
        org.users[name].save(update_fields=["phone"])
    grace = site_data.customers["grace"]
    now = clock.now()
    with acting_as(label="browser test setup", channel="system"):
        fix = services.task_create(
            site=org.block_a,
            kind=FieldTask.Kind.FIX,
            title="Fix a fault: lights flicker",
            customer=grace,
            meter=site_data.meters["grace"],
            priority=FieldTask.Priority.URGENT,
            due_at=now + dt.timedelta(hours=3),
            assign_to=org.agent,
        )
        loose = services.task_create(
            site=org.block_a,
            kind=FieldTask.Kind.READ,
            title="Read meter by hand: silent since Monday",
            due_at=now + dt.timedelta(days=1),
        )
    return Tasks(fix=fix, loose=loose)


def test_agent_records_a_visit_with_gps_and_marks_the_task_done(field_tasks, screen):
    tab = screen()
    page = tab.page
    tab.sign_in("agent")

    tab.goto("/field/tasks/")
    assert page.get_by_role("heading", name="My tasks").is_visible()
    item = page.locator(".ft-task", has_text="Fix a fault: lights flicker")
    assert "Urgent" in item.inner_text()
    tab.check("field-tasks-list")

    with page.expect_navigation():
        item.locator("a").click()
    assert page.url.endswith(f"/field/tasks/{field_tasks.fix.pk}/")
    assert page.get_by_text("Grace Nakato").first.is_visible()
    tab.check("field-task")

    page.context.grant_permissions(["geolocation"], origin=tab.origin)
    page.context.set_geolocation(POSITION)
    page.select_option("#visit_outcome", "done")
    page.fill("#visit_note", "Loose neutral tightened")
    page.get_by_role("button", name="Use my location").click()
    # A function, not an expression: Playwright polls an expression with eval, which the
    # page's Content-Security-Policy refuses whenever the first check is not yet true.
    page.wait_for_function("() => document.querySelector('#visit_latitude').value !== ''")
    assert page.input_value("#visit_latitude") == "0.347596"
    assert page.input_value("#visit_accuracy_m") == "14"
    tab.check("field-task-visit-filled")
    # The field app sends data-offline forms with fetch and swaps the page in place.
    page.get_by_role("button", name="Save the visit").click()
    page.get_by_text("Visit recorded.").wait_for()
    visits = page.locator(".ft-log").first.inner_text()
    assert "Loose neutral tightened" in visits and "0.347596" in visits and "±14 m" in visits
    assert page.locator(".ft-badge", has_text="In progress").first.is_visible()
    tab.check("field-task-visited")

    page.select_option("#close_status", "done")
    page.fill("#close_outcome", "Neutral tightened, supply steady")
    page.get_by_role("button", name="Close the task").click()
    page.get_by_text("Task closed: done.").wait_for()
    assert page.url.endswith("/field/tasks/")
    assert page.locator(".ft-task", has_text="Fix a fault").count() == 0
    tab.check("field-tasks-after-close")

    tab.goto("/field/tasks/?show=done")
    assert page.locator(".ft-task", has_text="Neutral tightened, supply steady").is_visible()
    tab.check("field-tasks-closed")


def test_supervisor_assigns_a_task_and_messages_the_team(field_tasks, screen):
    tab = screen()
    page = tab.page
    tab.sign_in("supervisor")

    tab.goto("/field/team/")
    assert page.get_by_role("heading", name="Your team at Block A").is_visible()
    assert page.locator(".ft-agent h3", has_text="Agent").is_visible()
    tab.check("field-team")

    loose = page.locator(".ft-task", has_text="Read meter by hand")
    loose.get_by_label(f"Assign task {field_tasks.loose.pk} to").select_option(label="Agent")
    with page.expect_navigation():
        loose.get_by_role("button", name="Assign").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text(f"Task {field_tasks.loose.pk} assigned to Agent.").is_visible()
    assert page.locator(".ft-task", has_text="Read meter by hand").count() == 0
    assert "2 open tasks" in page.locator(".ft-agent").first.inner_text()
    tab.check("field-team-assigned")

    page.fill("#id_body", "Meeting at the office at 8 tomorrow.")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview").click()
    preview = page.locator(".ft-preview").inner_text()
    assert "1 recipient" in preview and "+256770000201" in preview
    tab.check("field-team-message-preview")

    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("Message sent to the field agents of Block A.").is_visible()
    assert "Meeting at the office" in page.locator(".ft-log").inner_text()
    tab.check("field-team-message-sent")
