"""The operator's CSV layout: data/meter_010/meter_010_2026-04-04.csv, site local time."""

import csv
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge_agent.csvlog import COLUMNS, CsvLog

SAMPLE = Path("/work/shared/reference/legacy_logger_sample.csv")


def test_layout_matches_the_legacy_logger(tmp_path):
    log = CsvLog(tmp_path / "data", ZoneInfo("UTC"))
    for ts, v, i, p, e in [("15:15", 234.5, 2.1, 0.49, 12345.6), ("15:30", 235.1, 2.3, 0.53,
                                                                   12345.8)]:
        reading = {"address": 10, "voltage_v": [v], "current_a": [i], "power_kw": p,
                   "energy_kwh": e}
        log.write(reading, datetime.fromisoformat(f"2026-04-04T{ts}:00+00:00"))
    path = tmp_path / "data" / "meter_010" / "meter_010_2026-04-04.csv"
    text = path.read_text()
    if SAMPLE.exists():
        assert text.splitlines() == SAMPLE.read_text().splitlines()
    assert text.splitlines()[0] == ",".join(COLUMNS)


def test_site_local_time_decides_the_day_and_the_stamp(tmp_path):
    log = CsvLog(tmp_path, ZoneInfo("Africa/Kampala"))  # UTC+3
    log.write({"address": 100, "voltage_v": [231.0, 229.8, 233.1],
               "current_a": [12.1, 9.8, 11.0], "power_kw": 7.9, "energy_kwh": 88210.25},
              datetime(2026, 4, 4, 22, 15, tzinfo=UTC))
    path = tmp_path / "meter_100" / "meter_100_2026-04-05.csv"
    rows = list(csv.DictReader(path.open()))
    assert rows[0]["timestamp"] == "2026-04-05 01:15:00"
    assert rows[0]["V_L1_V"] == "231.0" and rows[0]["V_L3_V"] == "233.1"
