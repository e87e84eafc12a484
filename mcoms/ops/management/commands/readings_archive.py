"""``manage.py readings_archive``: list, archive or load back months of raw readings.

    readings_archive list                 # months in the database and in the archive
    readings_archive due                  # what the daily task would archive now
    readings_archive archive 2024-03      # one month, whatever its age
    readings_archive load 2024-03         # bring an archived month back

See metering/retention.py and docs/operations.md.
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from mcoms.core.audit import acting_as
from metering import partitions, retention


def month(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError as exc:
        raise CommandError(f"{text!r} is not a month (YYYY-MM)") from exc


class Command(BaseCommand):
    help = "List, archive or load back months of raw readings (retention)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "due", "archive", "load"])
        parser.add_argument("month", nargs="?", type=month)

    def handle(self, *args, action, month=None, **options):
        if action in {"archive", "load"} and month is None:
            raise CommandError(f"{action} needs a month (YYYY-MM)")
        if action == "list":
            self.stdout.write(
                "In the database: "
                + ", ".join(f"{m:%Y-%m}" for m in sorted(partitions.available_months()))
            )
            manifest = retention.read_manifest()
            for key, entry in sorted(manifest["months"].items()):
                held = f", held until {entry['hold_until']}" if entry.get("hold_until") else ""
                self.stdout.write(
                    f"Archived {key}: {entry.get('rows', 0)} rows in "
                    f"{len(entry.get('files', []))} files{held}"
                )
            return
        if action == "due":
            due = retention.months_due()
            self.stdout.write(", ".join(f"{m:%Y-%m}" for m in due) or "nothing due")
            return
        with acting_as(label="readings_archive command", channel="command"):
            try:
                if action == "archive":
                    result = retention.archive_month(month)
                    self.stdout.write(
                        f"{month:%Y-%m}: {result.rows} readings archived to "
                        f"{len(result.files)} files; partition dropped."
                    )
                else:
                    rows = retention.load_month(month)
                    self.stdout.write(f"{month:%Y-%m}: {rows} readings loaded back.")
            except retention.ArchiveError as exc:
                raise CommandError(str(exc)) from exc
