"""The operator's meter spreadsheet: preview, import, export and the pages around them."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from mcoms.core import services as core_services
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent, Site
from metering import inventory, inventory_views, services
from metering.inventory import EXTRA_COLUMNS, SHEET_COLUMNS, ImportFileError
from metering.models import Meter, MeterEvent

FIXTURES = Path(__file__).parent / "fixtures"
HEADER = (
    "Meter Serial Number,Meter Type,Site Name,Building/Customer,Assigned Modbus Address,Status,"
    "Date Assigned,Date Converted,Date Installed,Date Commissioned,"
    "Converted By,Installed By,Commissioned By,Notes"
)
KAMPALA = dt.timezone(dt.timedelta(hours=3))


def sheet(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def counts() -> tuple[int, int, int]:
    return Meter.objects.count(), MeterEvent.objects.count(), AuditEvent.objects.count()


def by_line(preview) -> dict[int, object]:
    return {row.line: row for row in preview.rows}


def local_day(at: dt.datetime) -> dt.date:
    return at.astimezone(KAMPALA).date()


@pytest.fixture
def gateway(org):
    with acting_as(label="test setup", channel="system"):
        return services.gateway_create(site=org.block_a, name="kla-block-a")


@pytest.fixture
def uploads(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path / "imports"


def test_reference_sample_row_imports(org):
    with acting_as(label="test setup", channel="system"):
        core_services.site_save(
            site=Site(cluster=org.kampala, name="Office Building A", code="oba")
        )
    data = (FIXTURES / "meter_inventory_sample.csv").read_bytes()

    preview = inventory.preview_file(data, "sample.csv", org.admin)
    assert preview.summary == "1 to create, 0 to update, 0 unchanged, 0 bad rows will be skipped"
    # The sample dates steps beyond its status; they are shown as ignored, not fatal.
    assert "Date Converted" in preview.rows[0].warnings[0]

    result = inventory.apply_file(data, "sample.csv", org.admin)
    assert (result.created, result.skipped) == (1, [])
    meter = Meter.objects.get(serial="200322016690")
    assert (meter.model, meter.site.name, meter.modbus_address) == (
        "DDSU666",
        "Office Building A",
        10,
    )
    assert (meter.status, meter.label) == ("assigned", "Floor 1 Reception")
    assert meter.notes == "Required reverse byte toggle"
    assigned = meter.events.get(to_status="assigned")
    assert local_day(assigned.at) == dt.date(2026, 4, 1)


def test_dry_run_writes_nothing(org):
    data = sheet(
        "200322016690,DDSU666,Block A,Shop 1,10,Assigned,2026-04-01,,,,,,,",
        "200322016691,DTSU666,Block A,Mill,100,Converted,2026-04-01,2026-04-02,,,Jane,,,",
    )
    before = counts()
    preview = inventory.preview_file(data, "meters.csv", org.admin)
    assert preview.count(inventory.CREATE) == 2
    assert counts() == before


def test_each_bad_row_is_listed_with_its_reason(org):
    with acting_as(org.admin, channel="web"):
        taken = services.meter_create(serial="999999999999", model="DDSU666")
        services.meter_assign(meter=taken, site=org.block_a, address=20)
    data = sheet(
        "12345,DDSU666,Block A,,11,Assigned,,,,,,,,",  # 2
        "200000000003,DDSU666,Block A,,12,Assigned,,,,,,,,",  # 3
        "200000000003,DDSU666,Block A,,13,Assigned,,,,,,,,",  # 4
        "200000000005,XYZ100,Block A,,14,Assigned,,,,,,,,",  # 5
        "200000000006,DDSU666,Nowhere,,15,Assigned,,,,,,,,",  # 6
        "200000000007,DDSU666,Block A,,1,Assigned,,,,,,,,",  # 7
        "200000000008,DDSU666,Block A,,150,Assigned,,,,,,,,",  # 8
        "200000000009,DDSU666,Block A,,20,Assigned,,,,,,,,",  # 9
        "200000000010,DDSU666,Block A,,30,Assigned,,,,,,,,",  # 10
        "200000000011,DDSU666,Block A,,30,Assigned,,,,,,,,",  # 11
        "200000000012,DDSU666,Block A,,31,Lost,,,,,,,,",  # 12
        "200000000013,DDSU666,Block A,,32,Assigned,2026-13-45,,,,,,,",  # 13
        "200000000014,DDSU666,Block A,,33,Converted,2026-04-05,2026-04-01,,,,,,",  # 14
        "200000000015,DDSU666,Block A,,34,Assigned,2099-01-01,,,,,,,",  # 15
        "2.00322E+11,DDSU666,Block A,,35,Assigned,,,,,,,,",  # 16
        "200000000017,DDSU666,Block A,,ten,Assigned,,,,,,,,",  # 17
        "200000000018,DDSU666,Block A,,36,Assigned,01/04/2026,,,,,,,",  # 18: good
        "200000000019,DDSU666,Block A,,37,Installed,,,,,,,,",  # 19
        "123,DDSU666,Block A,,1,Converted,2026-04-02,2026-04-01,,,,,,",  # 20
    )
    rows = by_line(inventory.preview_file(data, "bad.csv", org.admin))
    expected = {
        2: "not exactly 12 digits",
        3: "also on line 4",
        4: "also on line 3",
        5: "unknown meter type 'XYZ100'",
        6: "unknown site 'Nowhere'",
        7: "Address 1 is the factory default",
        8: "outside Block A's single-phase range 10–99",
        9: "already planned on Block A for meter 999999999999",
        10: "also used on line 11",
        11: "also used on line 10",
        12: "unknown status 'Lost'",
        13: "Date Assigned '2026-13-45' is not a date",
        14: "dates out of order",
        15: "in the future",
        16: "scientific notation",
        17: "'ten' is not a whole number",
        19: "Block A has no gateway",
        20: ["not exactly 12 digits", "factory default", "dates out of order"],
    }
    for line, reasons in expected.items():
        assert rows[line].action == "error", line
        for reason in [reasons] if isinstance(reasons, str) else reasons:
            assert any(reason in e for e in rows[line].errors), (line, rows[line].errors)
    assert rows[18].action == "create" and rows[18].errors == []


def test_confirm_imports_good_rows_and_reports_skipped_ones(org):
    data = sheet(
        "200322016690,DDSU666,Block A,Shop 1,10,Assigned,2026-04-01,,,,,,,",
        "200322016691,DDSU666,Block A,Shop 2,1,Assigned,2026-04-01,,,,,,,",
        "200322016692,DTSU666,Block B,Mill,100,Unassigned,,,,,,,,",
    )
    result = inventory.apply_file(data, "meters.csv", org.admin)
    assert (result.created, result.updated, result.unchanged) == (1, 0, 0)
    assert [(line, serial) for line, serial, _ in result.skipped] == [
        (3, "200322016691"),
        (4, "200322016692"),
    ]
    assert "factory default" in result.skipped[0][2][0]
    assert "Unassigned meter has no site" in result.skipped[1][2][0]
    assert list(Meter.objects.values_list("serial", flat=True)) == ["200322016690"]


def test_a_row_failing_while_written_is_skipped_and_the_rest_kept(org, monkeypatch):
    real_assign = services.meter_assign

    def assign(*, meter, **kwargs):
        if meter.serial.endswith("91"):
            raise ValidationError("the address was taken a moment ago")
        return real_assign(meter=meter, **kwargs)

    monkeypatch.setattr(services, "meter_assign", assign)
    data = sheet(
        "200322016690,DDSU666,Block A,,10,Assigned,2026-04-01,,,,,,,",
        "200322016691,DDSU666,Block A,,11,Assigned,2026-04-01,,,,,,,",
    )
    result = inventory.apply_file(data, "meters.csv", org.admin)
    assert result.created == 1
    assert result.skipped == [(3, "200322016691", ["the address was taken a moment ago"])]
    assert list(Meter.objects.values_list("serial", flat=True)) == ["200322016690"]


def test_lifecycle_events_carry_the_sheets_dates_and_signers(org, gateway):
    data = sheet(
        "200322016690,DDSU666,Block A,Shop 1,10,Commissioned,"
        "2026-04-01,02/04/2026,2026-04-03,2026-04-04,Jane Doe,John Smith,Alice Johnson,"
    )
    result = inventory.apply_file(data, "meters.csv", org.admin)
    assert result.created == 1
    meter = Meter.objects.get(serial="200322016690")
    assert (meter.status, meter.gateway) == ("commissioned", gateway)
    events = [(e.to_status, local_day(e.at), e.by_name) for e in meter.events.all()]
    assert events == [
        ("unassigned", dt.date(2026, 4, 1), "Admin"),
        ("assigned", dt.date(2026, 4, 1), "Admin"),
        ("converted", dt.date(2026, 4, 2), "Jane Doe"),
        # The sheet has no shipping column: the step takes the date before it and the importer.
        ("shipped", dt.date(2026, 4, 2), "Admin"),
        ("installed", dt.date(2026, 4, 3), "John Smith"),
        ("commissioned", dt.date(2026, 4, 4), "Alice Johnson"),
    ]
    assert local_day(meter.status_changed_at) == dt.date(2026, 4, 4)


def test_audit_trail_records_channel_import(org):
    data = sheet("200322016690,DDSU666,Block A,Shop 1,10,Assigned,2026-04-01,,,,,,,")
    before = AuditEvent.objects.count()
    inventory.apply_file(data, "meters.csv", org.admin)
    events = AuditEvent.objects.order_by("pk")[before:]
    assert len(events) == 2  # created, then assigned
    assert {(e.channel, e.actor_id) for e in events} == {("import", org.admin.pk)}


def test_reimporting_the_same_file_changes_nothing(org, gateway):
    data = sheet(
        "200322016690,DDSU666,Block A,Shop 1,10,Assigned,2026-04-01,,,,,,,",
        "200322016691,DDSU666,Block A,Shop 2,11,Installed,2026-04-01,2026-04-02,2026-04-03,,J,K,,",
    )
    assert inventory.apply_file(data, "meters.csv", org.admin).created == 2
    before = counts()
    again = inventory.apply_file(data, "meters.csv", org.admin)
    assert (again.created, again.updated, again.unchanged, again.skipped) == (0, 0, 2, [])
    assert counts() == before


def test_a_changed_row_updates_the_meter(org):
    inventory.apply_file(
        sheet("200322016690,DDSU666,Block A,Shop 1,10,Assigned,2026-04-01,,,,,,,"),
        "v1.csv",
        org.admin,
    )
    data = sheet("200322016690,DDSU666,Block A,Shop 9,10,Converted,,2026-04-05,,,Jane,,,new")
    preview = inventory.preview_file(data, "v2.csv", org.admin)
    assert preview.rows[0].action == "update"
    assert inventory.apply_file(data, "v2.csv", org.admin).updated == 1
    meter = Meter.objects.get()
    assert (meter.status, meter.label, meter.notes) == ("converted", "Shop 9", "new")
    assert meter.events.last().by_name == "Jane"


def test_rows_contradicting_mcoms_are_bad(org, gateway):
    inventory.apply_file(
        sheet("200322016690,DDSU666,Block A,,10,Installed,2026-04-01,2026-04-02,2026-04-03,,,,,"),
        "v1.csv",
        org.admin,
    )
    for row, reason in [
        ("DDSU666,Block B,,10,Installed", "MCOMS has this meter on Block A, not Block B"),
        ("DDSU666,Block A,,11,Installed", "MCOMS has this meter at address 10, not 11"),
        ("DTSU666,Block A,,10,Installed", "MCOMS has this meter as a DDSU666, not a DTSU666"),
        ("DDSU666,Block A,,10,Assigned", "import cannot make it Assigned"),
    ]:
        data = sheet(f"200322016690,{row},,,,,,,,")
        (plan,) = inventory.preview_file(data, "v2.csv", org.admin).rows
        assert plan.action == "error" and any(reason in e for e in plan.errors), plan.errors


def test_off_path_statuses_walk_through_the_dated_steps(org, gateway):
    data = sheet(
        "200322016690,DDSU666,Block A,,10,Decommissioned,2026-04-01,2026-04-02,,,Jane,,,",
        "200322016691,DDSU666,Block A,,11,Retest needed,2026-04-01,2026-04-02,2026-04-03,"
        "2026-04-04,Jane,John,Alice,",
    )
    assert inventory.apply_file(data, "meters.csv", org.admin).created == 2
    old = Meter.objects.get(serial="200322016690")
    assert [e.to_status for e in old.events.all()] == [
        "unassigned",
        "assigned",
        "converted",
        "decommissioned",
    ]
    assert (old.site, old.modbus_address) == (org.block_a, 10)
    retest = Meter.objects.get(serial="200322016691")
    assert [e.to_status for e in retest.events.all()][-3:] == [
        "installed",
        "commissioned",
        "retest_needed",
    ]
    assert retest.events.last().note == "imported from meters.csv, line 3"


def test_calin_meters_keep_their_phases_and_serials(org):
    with acting_as(org.admin, channel="web"):
        calin = services.meter_create(serial="CAL-0001", model="CALIN", phases=3)
        services.meter_assign(meter=calin, site=org.block_a, address=100)
    data = sheet(
        "CAL-0001,Calin,Block A,,100,Assigned",
        "CAL-0002,CALIN,Block A,,101,Assigned,2026-04-01,3",
        header="Meter Serial Number,Meter Type,Site Name,Building/Customer,"
        "Assigned Modbus Address,Status,Date Assigned,Phases",
    )
    preview = inventory.preview_file(data, "calin.csv", org.admin)
    assert [(r.action, r.errors) for r in preview.rows] == [("unchanged", []), ("create", [])]
    inventory.apply_file(data, "calin.csv", org.admin)
    assert Meter.objects.get(serial="CAL-0002").phases == 3


def xlsx_bytes(rows: list[list]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_with_excel_cells_and_loose_headers_imports(org):
    header = [c.upper().replace(" ", "  ") for c in SHEET_COLUMNS] + ["Colour"]
    data = xlsx_bytes(
        [
            ["Meter inventory, April"],  # a title above the header
            header,
            [200322016690, "ddsu666", "block a", "Shop 1", 10.0, "assigned"]
            + [dt.datetime(2026, 4, 1), None, None, None, None, None, None, "x", "blue"],
            [],
            [200322016691, "DTSU666", "Block A", "Mill", 100, "Assigned"]
            + ["05/04/2026", None, None, None, None, None, None, None, None],
        ]
    )
    preview = inventory.preview_file(data, "meters.xlsx", org.admin)
    assert preview.warnings == ["Column “Colour” is not known and was ignored."]
    assert [(r.line, r.action) for r in preview.rows] == [(3, "create"), (5, "create")]
    assert inventory.apply_file(data, "meters.xlsx", org.admin).created == 2
    mill = Meter.objects.get(serial="200322016691")
    assert local_day(mill.events.get(to_status="assigned").at) == dt.date(2026, 4, 5)


def test_xlsx_meter_list_on_a_later_sheet_is_found(org):
    book = Workbook()
    book.active.append(["Read me first"])
    meters = book.create_sheet("Meters")
    meters.append(SHEET_COLUMNS)
    meters.append(["200322016690", "DDSU666", "Block A", "", 10, "Assigned"])
    out = io.BytesIO()
    book.save(out)
    table = inventory.read_table(out.getvalue(), "book.xlsx")
    assert [(r["_line"], r["Meter Serial Number"]) for r in table] == [(2, "200322016690")]


def test_csv_in_windows_encoding_or_with_bom_reads(org):
    row = "200322016690,DDSU666,Block A,Café,10,Assigned,2026-04-01,,,,,,,"
    for data in (sheet(row).decode().encode("cp1252"), b"\xef\xbb\xbf" + sheet(row)):
        table = inventory.read_table(data, "meters.csv")
        assert table[0]["Building/Customer"] == "Café"
        assert table[0]["Meter Serial Number"] == "200322016690"


def test_missing_required_columns_is_one_clear_error():
    with pytest.raises(ImportFileError, match="Missing required column.*Status"):
        inventory.read_table(
            b"Meter Serial Number,Meter Type,Site Name,Assigned Modbus Address\n", "x.csv"
        )
    with pytest.raises(ImportFileError, match="Excel"):
        inventory.read_table(b"PK\x03\x04 not really a zip", "x.xlsx")


def seeded(org, gateway) -> None:
    """Meters in several states, made the way the pages make them."""
    at = dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC)
    with acting_as(org.admin, channel="web"):
        services.meter_create(serial="200322016600", model="DDSU666", now=at)
        m = services.meter_create(serial="200322016601", model="DTSU666", label="=SUM(A1)", now=at)
        services.meter_assign(meter=m, site=org.block_b, address=100, now=at)
        m = services.meter_create(serial="200322016602", model="DDSU666", notes='a, "b"', now=at)
        services.meter_assign(meter=m, site=org.block_a, address=10, by_name="Ann", now=at)
        for step in ("converted", "shipped", "installed", "commissioned", "retest_needed"):
            at += dt.timedelta(days=1)
            gw = gateway if step == "installed" else None
            services.meter_move(meter=m, status=step, by_name=f"by {step}", gateway=gw, now=at)
        m = services.meter_create(serial="200322016603", model="DTSU666", ct_ratio=40, now=at)
        services.meter_assign(meter=m, site=org.block_a, address=101, now=at)
        services.meter_move(meter=m, status="decommissioned", now=at)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_has_the_sheets_columns_then_extras_and_round_trips(org, gateway, fmt):
    seeded(org, gateway)
    data = inventory.export_table(Meter.objects.all(), fmt)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    else:
        rows = [list(r) for r in load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)]
    assert rows[0] == SHEET_COLUMNS + EXTRA_COLUMNS
    assert len(rows) == 5
    by_serial = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    retest = by_serial["200322016602"]
    assert (retest["Status"], retest["Gateway"]) == ("Retest needed", "kla-block-a")
    assert (retest["Assigned By"], retest["Converted By"]) == ("Ann", "by converted")
    assert str(retest["Date Retest Needed"])[:10] == "2026-04-06"
    assert str(by_serial["200322016603"]["CT Ratio"]) == "40"
    # In a CSV, text that Excel would run as a formula is guarded; re-import undoes it.
    label = by_serial["200322016601"]["Building/Customer"]
    assert label == ("'=SUM(A1)" if fmt == "csv" else "=SUM(A1)")

    before = counts()
    preview = inventory.preview_file(data, f"export.{fmt}", org.admin)
    assert [r.errors for r in preview.rows] == [[]] * 4
    assert preview.count(inventory.UNCHANGED) == 4
    result = inventory.apply_file(data, f"export.{fmt}", org.admin)
    assert (result.unchanged, result.skipped) == (4, [])
    assert counts() == before


def test_export_header_matches_the_reference_sheet():
    reference = (FIXTURES / "meter_inventory_sample.csv").read_text().splitlines()[0]
    assert reference.split(",") == SHEET_COLUMNS
    assert set(EXTRA_COLUMNS) >= {"Date Shipped", "Date Retest Needed", "Date Decommissioned"}


def test_web_upload_preview_confirm(org, client_for, uploads):
    client = client_for(org.site_manager)
    assert client.get(reverse("metering:import")).status_code == 200
    data = sheet(
        "200322016690,DDSU666,Block A,Shop 1,10,Assigned,2026-04-01,,,,,,,",
        "200322016691,DDSU666,Block A,Shop 2,1,Assigned,2026-04-01,,,,,,,",
    )
    upload = io.BytesIO(data)
    upload.name = "meters.csv"
    response = client.post(reverse("metering:import"), {"file": upload})
    assert response.status_code == 302
    preview_url = response["Location"]

    before = counts()
    page = client.get(preview_url)
    assert page.status_code == 200
    assert "1 to create, 0 to update, 0 unchanged, 1 bad rows will be skipped" in page.text
    assert "factory default" in page.text and 'class="table-wrap"' in page.text
    assert counts() == before

    done = client.post(preview_url)
    assert done.status_code == 200
    assert "1 created, 0 updated, 0 unchanged, 1 skipped" in done.text
    assert Meter.objects.get().serial == "200322016690"
    assert list(uploads.iterdir()) == []
    assert client.get(preview_url).status_code == 404


def test_only_the_uploader_sees_the_preview(org, client_for, uploads):
    upload = io.BytesIO(sheet("200322016690,DDSU666,Block A,,10,Assigned,,,,,,,,"))
    upload.name = "meters.csv"
    response = client_for(org.site_manager).post(reverse("metering:import"), {"file": upload})
    preview_url = response["Location"]
    other = client_for(org.cluster)
    assert other.get(preview_url).status_code == 404
    assert other.post(preview_url).status_code == 404
    assert Meter.objects.count() == 0
    missing = reverse("metering:import_preview", args=["x" * 32])
    assert other.get(missing).status_code == 404


def test_upload_refuses_big_and_unreadable_files(org, client_for, uploads, monkeypatch):
    client = client_for(org.admin)
    monkeypatch.setattr(inventory_views, "MAX_UPLOAD_BYTES", 10)
    big = io.BytesIO(sheet("200322016690,DDSU666,Block A,,10,Assigned,,,,,,,,"))
    big.name = "meters.csv"
    page = client.post(reverse("metering:import"), {"file": big})
    assert page.status_code == 200 and "larger than 5 MB" in page.text
    monkeypatch.setattr(inventory_views, "MAX_UPLOAD_BYTES", 5 * 1024 * 1024)
    odd = io.BytesIO(b"name,colour\nx,y\n")
    odd.name = "odd.csv"
    page = client.post(reverse("metering:import"), {"file": odd})
    assert page.status_code == 200 and "Missing required column" in page.text


def test_agent_cannot_import_but_can_export(org, client_for, gateway):
    seeded(org, gateway)
    client = client_for(org.agent)
    assert client.get(reverse("metering:import")).status_code == 403
    assert client.get(reverse("metering:import_preview", args=["x" * 32])).status_code == 403
    response = client.get(reverse("metering:export", args=["csv"]))
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    # Only Block A's meters: not Block B's, not unassigned stock.
    assert "200322016602" in text and "200322016601" not in text and "200322016600" not in text
    assert client.get(reverse("metering:export", args=["pdf"])).status_code == 404


def test_export_site_filter_and_xlsx_download(org, client_for, gateway):
    seeded(org, gateway)
    url = reverse("metering:export", args=["xlsx"]) + f"?site={org.block_b.pk}"
    response = client_for(org.admin).get(url)
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == ["200322016601"]
    assert rows[1][3] == "=SUM(A1)"  # text that looks like a formula stays text


def test_site_outside_scope_is_a_bad_row(org):
    data = sheet(
        "200322016690,DDSU666,Jinja Town,,10,Assigned,,,,,,,,",
        "200322016691,DDSU666,Block A,,10,Assigned,,,,,,,,",
    )
    preview = inventory.preview_file(data, "meters.csv", org.site_manager)
    assert "site 'Jinja Town' is not in your scope" in preview.rows[0].errors
    assert preview.rows[1].action == "create"
    result = inventory.apply_file(data, "meters.csv", org.site_manager)
    assert result.created == 1 and not Meter.objects.filter(site=org.jinja_town).exists()


def test_command_previews_without_confirm_and_writes_with_it(org, tmp_path):
    path = tmp_path / "meters.csv"
    path.write_bytes(
        sheet(
            "200322016690,DDSU666,Block A,,10,Assigned,2026-04-01,,,,,,,",
            "200322016691,DDSU666,Block A,,1,Assigned,2026-04-01,,,,,,,",
        )
    )
    out = io.StringIO()
    before = counts()
    call_command("import_meters", str(path), user="admin", stdout=out)
    assert counts() == before
    text = out.getvalue()
    assert "line 3 200322016691: Address 1 is the factory default" in text
    assert "1 to create, 0 to update, 0 unchanged, 1 bad rows will be skipped" in text

    call_command("import_meters", str(path), user="admin", confirm=True, stdout=io.StringIO())
    assert Meter.objects.get().serial == "200322016690"
    assert AuditEvent.objects.filter(channel="import").exists()


CELLS = st.one_of(
    st.text(max_size=15),
    st.sampled_from(["200322016690", "DDSU666", "Block A", "10", "1", "Installed", "01/02/2026"]),
)
XLSX_CELLS = st.one_of(
    CELLS.map(lambda text: openpyxl_safe(text)),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.none(),
)
SHEETS = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda s: s.encode("utf-8")),
    st.lists(st.lists(CELLS, min_size=1, max_size=8), min_size=1, max_size=6).map(
        lambda rows: sheet(*(",".join(r) for r in rows)).replace(b'"', b"")
    ),
    st.lists(st.lists(XLSX_CELLS, max_size=8), max_size=6).map(
        lambda rows: xlsx_bytes([SHEET_COLUMNS, *rows])
    ),
)


def openpyxl_safe(text: str) -> str:
    return "".join(c for c in text if c >= " " or c in "\t\n")


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=SHEETS, name=st.sampled_from(["x.csv", "x.xlsx", "x", "x.txt"]))
def test_any_input_gives_a_preview_or_a_clear_error(org, data, name):
    try:
        preview = inventory.preview_file(data, name, org.site_manager)
    except ImportFileError as exc:
        assert str(exc)
    else:
        assert all(row.action in {"create", "update", "unchanged", "error"} for row in preview.rows)
