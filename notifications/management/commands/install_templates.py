"""``manage.py install_templates``: add the catalogue's missing message templates."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from mcoms.core.audit import acting_as
from notifications import catalog


class Command(BaseCommand):
    help = "Create the default message templates that are missing; staff edits are kept."

    def handle(self, *args, **options):
        """Install the missing defaults and list what was created."""
        with acting_as(label="install_templates", channel="command"):
            created = catalog.install_defaults()
        for name in created:
            self.stdout.write(f"created {name}")
        self.stdout.write(f"{len(created)} template(s) created")
