"""``manage.py ops_fingerprint [--compare FILE]``: row counts and ledger balances as JSON.

Run it before a backup and after a restore; ``--compare`` exits 1 listing every
difference from an earlier fingerprint (see docs/operations.md, the restore drill).
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mcoms.ops.fingerprint import KEY_TABLES, differences, fingerprint


class Command(BaseCommand):
    help = "Print the database's row counts and ledger balances (JSON); compare with a file."

    def add_arguments(self, parser):
        parser.add_argument("--compare", help="an earlier fingerprint (JSON) to compare with")
        parser.add_argument("--summary", action="store_true", help="key tables only, readable")

    def handle(self, *args, compare=None, summary=False, **options):
        now = fingerprint()
        if summary:
            for label in KEY_TABLES:
                self.stdout.write(f"{label:<22} {now['tables'].get(label, 0):>10}")
            self.stdout.write(f"{'ledger accounts':<22} {len(now['ledger_balances']):>10}")
        elif not compare:
            self.stdout.write(json.dumps(now, indent=1, sort_keys=True))
        if compare:
            before = json.loads(Path(compare).read_text())
            diff = differences(before, now)
            if diff:
                raise CommandError("The databases differ:\n" + "\n".join(diff))
            self.stdout.write(
                f"Same: {len(now['tables'])} tables, {len(now['ledger_balances'])} ledger balances."
            )
