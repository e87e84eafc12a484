"""The Celery application: broker from settings, tasks discovered in every app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcoms.settings")

# Every task counts the workers it lost (mcoms/core/taskbase.py).
app = Celery("mcoms", task_cls="mcoms.core.taskbase:Task")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
