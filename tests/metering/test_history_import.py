"""Importing the operator's logger CSV history (metering.history_import, page and command)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
import zoneinfo
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from mcoms.core.models import AuditEvent
from metering import history_import
from metering.history_import import Source, import_sources, to_utc
from metering.lifecycle import Status
from metering.models import MeterComms, QuarantinedReading, Reading
from tests.metering.edge_fixtures import NOW

SAMPLE = Path("/work/shared/reference/legacy_logger_sample.csv")
HEADER = "timestamp,meter_id,V_L1_V,I_L1_A,P_total_kW,E_total_kWh\n"
UTC = dt.UTC


def sample_bytes() -> bytes:
    if SAMPLE.exists():
        return SAMPLE.read_bytes()
    # The reference file as shipped to us (kept here so the test runs without /work/shared).
    return (
        HEADER + "2026-04-04 15:15:00,10,234.5,2.1,0.49,12345.6\n"
        "2026-04-04 15:30:00,10,235.1,2.3,0.53,12345.8\n"
    ).encode()


def csv_source(name: str, body: str) -> Source:
    data = (HEADER + body).encode()
    return Source(name, lambda: data)


def run(bus, *sources, now=NOW, **kwargs):
    return import_sources(gateway=bus.gateway, sources=list(sources), now=now, **kwargs)


def snapshot() -> tuple:
    readings = list(Reading.objects.order_by("meter_id", "ts").values())
    comms = list(MeterComms.objects.order_by("meter_id").values())
    return readings, comms, QuarantinedReading.objects.count()


def test_reference_sample_imports_in_utc(bus):
    summary = run(bus, Source("data/meter_010/meter_010_2026-04-04.csv", sample_bytes))

    assert (summary.rows, summary.accepted, summary.duplicates, summary.rejected) == (2, 2, 0, 0)
    assert summary.flagged == 0
    rows = list(Reading.objects.filter(meter=bus.single).order_by("ts"))
    # 15:15 in Kampala (UTC+3) is 12:15 UTC.
    assert [r.ts for r in rows] == [
        dt.datetime(2026, 4, 4, 12, 15, tzinfo=UTC),
        dt.datetime(2026, 4, 4, 12, 30, tzinfo=UTC),
    ]
    first = rows[0]
    assert (str(first.energy_kwh), first.voltage_l1, first.current_l1, first.power_kw) == (
        "12345.600",
        234.5,
        2.1,
        0.49,
    )
    assert first.quality == Reading.Quality.VALID and first.gateway_id == bus.gateway.pk
    # The first valid readings commission the installed meter, as live uploads do, and the
    # change is recorded as an import.
    bus.single.refresh_from_db()
    assert bus.single.status == Status.COMMISSIONED
    event = AuditEvent.objects.filter(object_id=str(bus.single.pk)).order_by("-id").first()
    assert event.channel == AuditEvent.Channel.IMPORT and event.actor_label == "history import"


def test_reimport_is_all_duplicates_and_changes_nothing(bus):
    body = (
        "2026-04-01 02:00:00,10,234.5,2.1,0.49,12340.0\n"  # before installation: flagged
        "2026-04-04 15:15:00,10,234.5,2.1,0.49,12345.6\n"
        "2026-04-04 15:30:00,10,235.1,2.3,0.53,12345.8\n"
        "2026-04-04 15:30:00,11,235.1,2.3,0.53,100.0\n"  # no meter at 11: quarantined
    )
    source = csv_source("meter_010_2026-04-04.csv", body)
    first = run(bus, source)
    assert (first.accepted, first.duplicates, first.rejected, first.quarantined) == (3, 0, 1, 1)
    assert first.flagged_reasons == {"timestamp before installation (…)": 1}
    assert first.flagged_rows[0].line == 2
    before = snapshot()

    again = run(bus, source, now=NOW + dt.timedelta(hours=1))

    # Nothing stored, so nothing newly flagged either.
    assert (again.accepted, again.duplicates, again.flagged) == (0, 3, 0)
    # The row without a meter is still reported, but not kept in quarantine twice.
    assert again.rejected == 1 and again.already_quarantined == 1
    assert snapshot() == before


def test_local_time_is_converted_with_the_site_zone_across_a_clock_change(bus):
    site = bus.gateway.site
    site.timezone = "Europe/London"
    site.save()
    bus.gateway.refresh_from_db()
    # Clocks went back at 02:00 BST on 2025-10-26: 01:00–01:59 happened twice.
    zone = zoneinfo.ZoneInfo("Europe/London")
    seen: set = set()
    assert to_utc("2025-10-26 01:30:00", zone, seen)[0] == dt.datetime(
        2025, 10, 26, 0, 30, tzinfo=UTC
    )
    assert to_utc("2025-10-26 01:30:00", zone, seen)[0] == dt.datetime(
        2025, 10, 26, 1, 30, tzinfo=UTC
    )
    # Clocks went forward at 01:00 GMT on 2026-03-29: 01:30 never happened.
    ts, reason = to_utc("2026-03-29 01:30:00", zone, set())
    assert ts is None and "does not exist" in reason
    # Summer time in April: local 15:15 is 14:15 UTC; an explicit offset is kept.
    assert to_utc("2026-04-04 15:15:00", zone, set())[0] == dt.datetime(
        2026, 4, 4, 14, 15, tzinfo=UTC
    )
    assert to_utc("2026-04-04T15:15:00Z", zone, set())[0] == dt.datetime(
        2026, 4, 4, 15, 15, tzinfo=UTC
    )

    run(bus, csv_source("meter_010_2026-04-04.csv", "2026-04-04 15:15:00,10,234,2,0.4,5.0\n"))
    assert Reading.objects.get(meter=bus.single).ts == dt.datetime(2026, 4, 4, 14, 15, tzinfo=UTC)


def test_bad_rows_are_reported_with_line_and_reason_and_the_rest_imports(bus):
    body = (
        "2026-04-04 15:15:00,10,234.5,2.1,0.49,12345.6\n"  # line 2, good
        "2026-04-04 15:30:00,10,abc,2.3,0.53,12345.8\n"  # line 3
        "not a time,10,235.1,2.3,0.53,12345.9\n"  # line 4
        "2026-04-04 16:00:00,10,235.1,2.3\n"  # line 5
        "2026-04-04 16:15:00,10,235.1,2.3,0.53,\n"  # line 6
        "2026-04-04 16:30:00,ten,235.1,2.3,0.53,12346.0\n"  # line 7
        "\n"
        "2026-04-04 16:45:00,10,nan,,0.53,12346.1\n"  # line 9: missing values left out
    )
    wrong = Source("meter_100_2026-04-04.csv", lambda: b"time,id,kwh\n2026-04-04 15:15:00,100,1\n")

    summary = run(bus, csv_source("meter_010_2026-04-04.csv", body), wrong)

    assert (summary.files, summary.rows, summary.accepted, summary.rejected) == (2, 8, 2, 6)
    listed = {(p.file, p.line, p.reason) for p in summary.problems}
    name = "meter_010_2026-04-04.csv"
    assert listed == {
        (name, 3, "V_L1_V is not a number"),
        (name, 4, "timestamp is not a date and time"),
        (name, 5, "wrong number of fields"),
        (name, 6, "E_total_kWh is empty"),
        (name, 7, "meter_id is not a Modbus address 1–247"),
        (
            "meter_100_2026-04-04.csv",
            2,
            "wrong columns: timestamp, meter_id, E_total_kWh missing",
        ),
    }
    assert summary.rejected_reasons["V_L1_V is not a number"] == 1
    last = Reading.objects.get(meter=bus.single, ts=dt.datetime(2026, 4, 4, 13, 45, tzinfo=UTC))
    assert last.voltage_l1 is None and last.current_l1 is None and last.power_kw == 0.53
    assert any("line 3: V_L1_V is not a number (abc)" in line for line in summary.lines())


def test_a_row_for_an_address_without_a_meter_is_rejected_with_the_reason(bus):
    summary = run(
        bus, csv_source("meter_042_2026-04-04.csv", "2026-04-04 15:15:00,42,230,1,0.2,10.0\n")
    )
    assert (summary.accepted, summary.rejected, summary.quarantined) == (0, 1, 1)
    assert summary.rejected_reasons == {"no meter assigned at address 42": 1}
    assert summary.problems[0].line == 2
    kept = QuarantinedReading.objects.get()
    assert (kept.address, kept.source, kept.gateway_id) == (42, "import", bus.gateway.pk)


def test_readings_older_than_the_partitions_are_quarantined(bus):
    summary = run(
        bus, csv_source("meter_010_2026-01-10.csv", "2026-01-10 10:00:00,10,230,1,0.2,10.0\n")
    )
    assert (summary.accepted, summary.rejected, summary.quarantined) == (0, 1, 1)
    assert summary.rejected_reasons == {"no partition for 2026-01: kept in quarantine": 1}
    kept = QuarantinedReading.objects.get()
    assert kept.meter_id == bus.single.pk
    assert kept.ts == dt.datetime(2026, 1, 10, 7, 0, tzinfo=UTC)
    assert not Reading.objects.exists()


def test_many_files_in_a_zip_go_in_batches_and_in_time_order(bus):
    start = dt.datetime(2026, 4, 2, 0, 0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for day in (3, 2):  # out of order in the archive
            lines = [HEADER.strip()]
            for n in range(96):
                at = start + dt.timedelta(days=day - 2, minutes=15 * n)
                energy = 100 + (day - 2) * 96 * 0.1 + n * 0.1
                lines.append(f"{at:%Y-%m-%d %H:%M:%S},10,230,1,0.4,{energy:.1f}")
            archive.writestr(f"data/meter_010/meter_010_2026-04-0{day}.csv", "\n".join(lines))
        archive.writestr("data/readme.txt", "not a csv")
    sources = history_import.sources_from_upload("history.zip", buffer.getvalue(), max_bytes=10**7)

    summary = run(bus, *sources, batch_size=50)

    assert (summary.files, summary.rows, summary.accepted, summary.flagged) == (2, 192, 192, 0)
    assert Reading.objects.filter(meter=bus.single).count() == 192


def test_a_zip_that_unpacks_too_big_is_refused(bus):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/meter_010/a.csv", HEADER + "x" * 5000)
    with pytest.raises(history_import.HistoryFileError, match="unpacks to more"):
        history_import.sources_from_upload("big.zip", buffer.getvalue(), max_bytes=1000)


def test_the_same_row_twice_in_one_import_is_a_duplicate(bus):
    row = "2026-04-04 15:15:00,10,234.5,2.1,0.49,12345.6\n"
    summary = run(bus, csv_source("a_2026-04-04.csv", row), csv_source("b_2026-04-04.csv", row))
    assert (summary.accepted, summary.duplicates, summary.rejected) == (1, 1, 0)


# --- The page ------------------------------------------------------------------------------


def upload(client, gateway, *files):
    return client.post(
        reverse("metering:history_import", args=[gateway.pk]), {"files": list(files)}
    )


def sample_upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("meter_010_2026-04-04.csv", sample_bytes(), "text/csv")


def test_a_site_manager_imports_from_the_gateway_and_sees_the_result(bus, org, client_for):
    client = client_for(org.site_manager)
    assert client.get(reverse("metering:history_import", args=[bus.gateway.pk])).status_code == 200

    response = upload(client, bus.gateway, sample_upload())

    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "2 rows in 1 file: 2 accepted, 0 duplicates, 0 rejected, 0 flagged" in page.text
    assert "Readings from 2026-04-04 15:15 to 2026-04-04 15:30 (Africa/Kampala)" in page.text
    assert Reading.objects.count() == 2
    event = AuditEvent.objects.filter(channel=AuditEvent.Channel.IMPORT).order_by("-id").first()
    assert event.actor == org.site_manager
    # The result belongs to the uploader.
    assert client_for(org.cluster).get(response["Location"]).status_code == 404
    # Importing the same file again changes nothing.
    again = client.get(upload(client, bus.gateway, sample_upload())["Location"])
    assert "0 accepted, 2 duplicates" in again.text
    assert Reading.objects.count() == 2


def test_the_page_refuses_people_without_the_right_or_the_site(bus, org, client_for):
    url = reverse("metering:history_import", args=[bus.gateway.pk])
    for person in (org.agent, org.supervisor, org.billing):
        assert client_for(person).get(url).status_code == 403
        assert upload(client_for(person), bus.gateway, sample_upload()).status_code == 403
    assert client_for(org.outsider_agent).get(url).status_code == 404
    assert client_for(org.customer).get(url).status_code == 404
    assert not Reading.objects.exists()


def test_a_wrong_file_type_is_an_error_on_the_form(bus, org, client_for):
    response = upload(
        client_for(org.site_manager),
        bus.gateway,
        SimpleUploadedFile("meters.xlsx", b"PK..", "application/octet-stream"),
    )
    assert response.status_code == 200
    assert "only .csv files or a .zip" in response.text


# --- The command ---------------------------------------------------------------------------


def test_the_command_imports_a_folder_and_prints_the_summary(bus, tmp_path):
    folder = tmp_path / "data" / "meter_010"
    folder.mkdir(parents=True)
    (folder / "meter_010_2026-04-04.csv").write_bytes(sample_bytes())
    (folder / "meter_010_2026-04-05.csv").write_text(HEADER + "bad,10,1,1,1,1\n")
    out = io.StringIO()

    call_command("import_history", "--gateway", "kla-block-a", str(tmp_path / "data"), stdout=out)

    text = out.getvalue()
    assert "3 rows in 2 files: 2 accepted, 0 duplicates, 1 rejected, 0 flagged." in text
    assert "meter_010_2026-04-05.csv line 2: timestamp is not a date and time (bad)" in text
    assert Reading.objects.count() == 2

    out = io.StringIO()
    call_command("import_history", "--gateway", "kla-block-a", str(tmp_path / "data"), stdout=out)
    assert "0 accepted, 2 duplicates" in out.getvalue()


def test_the_result_page_lists_reasons_and_rejected_rows(bus, org, client_for):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "data/meter_010/meter_010_2026-04-04.csv",
            HEADER + "2026-04-04 15:15:00,10,234.5,2.1,0.49,12345.6\n"
            "2026-04-04 15:30:00,42,235.1,2.3,0.53,100.0\n",
        )
    client = client_for(org.site_manager)
    zipped = SimpleUploadedFile("history.zip", buffer.getvalue(), "application/zip")

    page = client.get(upload(client, bus.gateway, zipped)["Location"])

    assert "1 accepted, 0 duplicates, 1 rejected (1 kept in quarantine)" in page.text
    assert "<td>no meter assigned at address 42</td><td>1</td>" in page.text
    assert "history.zip/data/meter_010/meter_010_2026-04-04.csv</td><td>3</td>" in page.text
