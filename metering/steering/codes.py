"""Calin's relay status and disconnect-reason codes, decoded with the operator's table.

The tables in ``data/`` are the operator's own (their 1000–1025 numbering is not checked
against Calin's documents). A code is looked up by its AMI number (``1007``) or by the
sub-code of short code 87, "reason the relay disconnected" (``07`` or ``7``); each comes
with what a field agent should do about it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class StatusCode:
    ami_code: str
    subcode: str
    meaning: str
    category: str
    field_action: str

    @property
    def is_tamper(self) -> bool:
        return self.category == "tamper"


@dataclass(frozen=True)
class ShortCode:
    code: str
    meaning: str
    use: str


@cache
def status_codes() -> dict[str, StatusCode]:
    """Every relay status code, by AMI number."""
    with (DATA / "calin_relay_status_codes.csv").open(newline="", encoding="utf-8") as f:
        rows = [
            StatusCode(
                ami_code=row["ami_code"],
                subcode=row["code87_subcode"],
                meaning=row["meaning"],
                category=row["category"],
                field_action=row["field_action"],
            )
            for row in csv.DictReader(f)
        ]
    return {row.ami_code: row for row in rows}


@cache
def short_codes() -> dict[str, ShortCode]:
    """Calin's short display codes (``01`` cumulative kWh … ``87`` disconnect reason)."""
    with (DATA / "calin_short_codes.csv").open(newline="", encoding="utf-8") as f:
        return {row["code"]: ShortCode(**row) for row in csv.DictReader(f)}


def decode(code: str | int | None) -> StatusCode | None:
    """The status behind an AMI code or a short-code-87 sub-code; None when unknown."""
    if code is None:
        return None
    text = str(code).strip()
    if not text.isdigit():
        return None
    table = status_codes()
    if text in table:
        return table[text]
    sub = f"{int(text):02d}"
    for row in table.values():
        if row.subcode == sub:
            return row
    return None


def describe(code: str | int | None) -> str:
    """One line for pages and audit notes: the meaning and the field action."""
    found = decode(code)
    if found is None:
        return f"unknown status code {code}" if code not in (None, "") else ""
    return f"{found.ami_code} {found.meaning} — {found.field_action}"
