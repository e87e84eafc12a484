"""Import the operator's meter spreadsheet from the command line, previewing by default."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mcoms.core.models import User
from mcoms.core.roles import Cap
from metering import inventory


class Command(BaseCommand):
    help = (
        "Preview importing a meter sheet (CSV or XLSX) as USERNAME; with --confirm, import "
        "its good rows and skip the bad ones."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV or XLSX file with the meter inventory columns")
        parser.add_argument("--user", required=True, help="username the import acts as")
        parser.add_argument(
            "--confirm", action="store_true", help="write the good rows (default: preview only)"
        )

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        user = User.objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['user']!r}.")
        if not user.can(Cap.METERS_IMPORT):
            raise CommandError(f"{user.get_username()} may not import meters.")
        try:
            preview = inventory.preview_file(data, path.name, user)
        except inventory.ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        for warning in preview.warnings:
            self.stdout.write(f"warning: {warning}")
        for row in preview.rows:
            if row.errors:
                self.stdout.write(f"line {row.line} {row.serial or '-'}: {'; '.join(row.errors)}")
        self.stdout.write(f"{preview.summary}.")
        if not options["confirm"]:
            self.stdout.write("Preview only: nothing was written. Add --confirm to import.")
            return
        try:
            result = inventory.apply_file(data, path.name, user)
        except inventory.ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        # Rows can still fail when written (e.g. a bus filled by an earlier row); say which.
        listed = {row.line for row in preview.rows if row.errors}
        for line, serial, reasons in result.skipped:
            if line not in listed:
                self.stdout.write(f"line {line} {serial or '-'}: {'; '.join(reasons)}")
        self.stdout.write(self.style.SUCCESS(f"Imported: {result.summary}."))
