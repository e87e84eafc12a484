"""Every task the beat schedules is known to a worker started the normal way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_process_registers_every_scheduled_task():
    from metering.schedules import declared

    script = (
        "import django; django.setup();"
        "from mcoms.celery import app; app.loader.import_default_modules();"
        "print('\\n'.join(sorted(app.tasks)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"DJANGO_SETTINGS_MODULE": "mcoms.settings", "PATH": "/usr/bin"},
    )
    registered = set(done.stdout.split())
    assert done.returncode == 0, done.stderr[-2000:]
    for schedule in declared():
        assert schedule.task in registered, schedule.task
    assert "metering.tasks.refresh_rollups" in registered
    assert "notifications.tasks.deliver_message" in registered
