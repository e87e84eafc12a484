"""The operator's daily CSV per meter, as their old logger wrote it (site local time).

``data/meter_010/meter_010_2026-04-04.csv`` with the columns of
legacy_logger_sample.csv; three-phase meters add their L2/L3 columns at the end so
that tools reading the single-phase columns by name keep working.
"""

from __future__ import annotations

import csv
import logging
from datetime import datetime, tzinfo
from pathlib import Path

log = logging.getLogger(__name__)

COLUMNS = ["timestamp", "meter_id", "V_L1_V", "I_L1_A", "P_total_kW", "E_total_kWh"]
THREE_PHASE_COLUMNS = ["V_L2_V", "V_L3_V", "I_L2_A", "I_L3_A"]


def _phase(values: dict, name: str, index: int):
    items = values.get(name) or []
    return items[index] if index < len(items) else ""


def row_for(reading: dict, ts: datetime, tz: tzinfo | None) -> dict:
    """One CSV row for a reading (``ts`` shown in the site's time zone)."""
    local = ts.astimezone(tz)
    row = {"timestamp": local.strftime("%Y-%m-%d %H:%M:%S"), "meter_id": reading["address"],
           "V_L1_V": _phase(reading, "voltage_v", 0), "I_L1_A": _phase(reading, "current_a", 0),
           "P_total_kW": reading.get("power_kw", ""), "E_total_kWh": reading.get("energy_kwh", "")}
    if len(reading.get("voltage_v") or []) == 3:
        row.update({"V_L2_V": _phase(reading, "voltage_v", 1),
                    "V_L3_V": _phase(reading, "voltage_v", 2),
                    "I_L2_A": _phase(reading, "current_a", 1),
                    "I_L3_A": _phase(reading, "current_a", 2)})
    return row


class CsvLog:
    """Appends interval readings to per-meter daily files under ``root``."""

    def __init__(self, root: str | Path, tz: tzinfo | None = None):
        self.root = Path(root)
        self.tz = tz

    def path_for(self, address: int, local: datetime) -> Path:
        """data/meter_010/meter_010_2026-04-04.csv"""
        name = f"meter_{address:03d}"
        return self.root / name / f"{name}_{local.strftime('%Y-%m-%d')}.csv"

    def write(self, reading: dict, ts: datetime) -> None:
        """Append one reading; a failure is logged, never fatal (the outbox has it)."""
        row = row_for(reading, ts, self.tz)
        path = self.path_for(reading["address"], ts.astimezone(self.tz))
        columns = COLUMNS + (THREE_PHASE_COLUMNS if "V_L2_V" in row else [])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            new = not path.exists()
            with open(path, "a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns)
                if new:
                    writer.writeheader()
                writer.writerow(row)
        except OSError as exc:
            log.error("CSV log %s: %s", path, exc)
