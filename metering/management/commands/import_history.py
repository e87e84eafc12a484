"""Import the operator's logger CSV history for one gateway from the command line."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mcoms.core.models import User
from metering import history_import
from metering.models import Gateway

MAX_ZIP_UNPACKED_BYTES = 4 * 1024 * 1024 * 1024


class Command(BaseCommand):
    help = (
        "Import logger CSV files (one per meter per day, site local time) for a gateway. "
        "Folders are searched for .csv and .zip files. Importing again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--gateway", required=True, help="gateway name, e.g. kla-block-a")
        parser.add_argument("paths", nargs="+", help="CSV files, .zip files or folders")
        parser.add_argument("--user", help="username the import is recorded under (optional)")

    def handle(self, *args, **options):
        gateway = Gateway.objects.select_related("site").filter(name=options["gateway"]).first()
        if gateway is None:
            raise CommandError(f"No gateway {options['gateway']!r}.")
        user = None
        if options.get("user"):
            user = User.objects.filter(username=options["user"], is_active=True).first()
            if user is None:
                raise CommandError(f"No active user {options['user']!r}.")
        paths = [Path(p) for p in options["paths"]]
        for path in paths:
            if not path.exists():
                raise CommandError(f"{path} does not exist.")
        try:
            sources = history_import.sources_from_paths(paths, max_zip_bytes=MAX_ZIP_UNPACKED_BYTES)
        except (history_import.HistoryFileError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        summary = history_import.import_sources(
            gateway=gateway, sources=sources, user=user, label=None if user else "import_history"
        )
        for line in summary.lines():
            self.stdout.write(line)
