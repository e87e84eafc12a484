"""The demo gives the field agent a morning's tasks and the supervisor something to assign."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from fieldops.models import FieldTask, Visit

pytestmark = pytest.mark.django_db


def test_demo_loads_field_tasks_from_the_sources_and_a_morning_of_work():
    call_command("seed_demo")
    tasks = FieldTask.objects.filter(site__code="kla-a")
    mine = tasks.filter(assigned_to__username="agent")
    assert mine.filter(status="in_progress").exists()
    assert mine.filter(status="done").exists()
    assert tasks.filter(status="open", assigned_to__isnull=True).exists()
    synced = FieldTask.objects.exclude(source="manual")
    assert synced.exists() and all(t.source_ref for t in synced)
    visit = Visit.objects.get(task__status="done", agent__username="agent")
    assert visit.has_position and visit.accuracy_m
    assert FieldTask.objects.exclude(source_ref="").count() == len(
        set(FieldTask.objects.exclude(source_ref="").values_list("source_ref", flat=True))
    )
