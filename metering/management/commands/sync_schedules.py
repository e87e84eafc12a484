"""Load metering's periodic tasks (declared in ``metering.schedules``) into celery beat."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from metering import schedules


class Command(BaseCommand):
    help = (
        "Create or update metering's periodic tasks in django-celery-beat and the message "
        "templates they use. Safe to run on every start."
    )

    def handle(self, *args, **options):
        report = schedules.sync()
        for what in ("created", "updated", "disabled", "unchanged"):
            for name in report[what]:
                self.stdout.write(f"{what}: {name}")
        for name in report["templates"]:
            self.stdout.write(f"template created: {name}")
