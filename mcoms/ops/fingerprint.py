"""What a database holds, in a form two databases can be compared by (the restore drill).

``fingerprint()`` counts the rows of every table the platform's models own and
takes every ledger account's balance. A restore is good when the restored
database's fingerprint equals the one taken from the original before it was lost:
``manage.py ops_fingerprint`` prints it as JSON, the drill (docs/operations.md)
compares the two files.
"""

from __future__ import annotations

from django.apps import apps
from django.db import connection

from billing import ops_queries as billing_ops

# The tables an operator checks first after a restore (all tables are compared).
KEY_TABLES = (
    "customers.customer",
    "metering.meter",
    "metering.reading",
    "billing.invoice",
    "payments.payment",
    "billing.posting",
    "billing.postingline",
    "core.auditevent",
)


def table_counts() -> dict[str, int]:
    """Rows in each model's table, by ``app_label.model`` (tables not migrated yet: left out)."""
    counts = {}
    existing = set(connection.introspection.table_names())
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or not meta.managed or meta.db_table not in existing:
            continue
        counts[meta.label_lower] = model._base_manager.count()
    return dict(sorted(counts.items()))


def fingerprint() -> dict:
    return {
        "tables": table_counts(),
        "ledger_balances": {k: str(v) for k, v in billing_ops.account_balances().items()},
    }


def differences(before: dict, after: dict) -> list[str]:
    """What differs between two fingerprints, one line each (empty: they match)."""
    lines = []
    for section in ("tables", "ledger_balances"):
        a, b = before.get(section, {}), after.get(section, {})
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                lines.append(f"{section} {key}: {a.get(key)} -> {b.get(key)}")
    return lines
