"""Bad input to the parsers: hypothesis finds no exception but the documented ones.

- the meter spreadsheet import (``metering.inventory_parse`` / ``metering.inventory``):
  any bytes under any name, and sheets with the real columns and cells of every kind
  (Excel numbers, dates, text, formulas, junk), as CSV and as XLSX — read, planned and
  applied; the only exception allowed is ``ImportFileError`` (the file as a whole is
  unreadable), every other problem must be a row error in words;
- the logger history import (``metering.history_import``): any bytes as a CSV or a
  .zip, and logger files with the real header and rows of every kind, imported for a
  gateway; only ``HistoryFileError`` for an unreadable upload, bad rows are counted;
- the USSD menu and inbound SMS (``notifications.selfservice``): the providers' form
  fields of any content and length posted to the real callbacks answer 200 or 400, a
  screen of ``CON``/``END`` within 160 characters, never the apology for an internal
  error; the amount and SMS command parsers take any text.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import itertools
import zipfile
from decimal import Decimal

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering import history_import, inventory, inventory_parse
from notifications.selfservice import messages, sms, texts
from notifications.selfservice.menu_items import parse_amount
from tests import factories

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_ids = itertools.count(1)

# --- cells as spreadsheets and loggers hold them ---------------------------------------------

dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31))
date_texts = st.one_of(
    dates.map(lambda d: d.isoformat()),
    dates.map(lambda d: f"{d:%d/%m/%Y}"),
    st.from_regex(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}( \d{1,2}:\d{2})?", fullmatch=True),
)
numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
junk = st.text(max_size=40)
cell = st.one_of(
    junk,
    numbers.map(str),
    date_texts,
    st.sampled_from(
        [
            "",
            " ",
            "=1+1",
            "'=cmd",
            "+256",
            "-",
            "1.5E+11",
            "NaN",
            "Infinity",
            "1e400",
            "DDSU666",
            "DTSU666",
            "Installed",
            "commissioned",
            "KLA",
            "Block A",
            "10",
            "247",
            "0",
            "1",
            "999999999999",
            "123456789012",
            "1,5",
            "12.5.6",
            "2026-02-30",
        ]
    ),
)
serials = st.one_of(
    st.from_regex(r"\d{12}", fullmatch=True), st.sampled_from(["123456789012"]), cell
)


def sheet_rows(columns):
    return st.lists(
        st.fixed_dictionaries(
            {c: (serials if c == inventory_parse.SERIAL else cell) for c in columns}
        ),
        max_size=6,
    )


def as_csv(columns, rows, delimiter=",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] for c in columns])
    return out.getvalue().encode("utf-8")


column_sets = st.one_of(
    st.just(inventory_parse.SHEET_COLUMNS),
    st.just(inventory_parse.ALL_COLUMNS),
    st.lists(st.sampled_from(inventory_parse.ALL_COLUMNS), min_size=1, max_size=8, unique=True),
    st.permutations(inventory_parse.SHEET_COLUMNS),
)


@FUZZ
@given(data=st.binary(max_size=400), name=st.sampled_from(["m.csv", "m.xlsx", "m.xls", "m"]))
def test_inventory_any_bytes_are_a_sheet_or_an_import_file_error(org, data, name):
    try:
        inventory.preview_file(data, name, org.admin)
    except inventory_parse.ImportFileError as exc:
        assert str(exc)


@FUZZ
@given(
    columns=column_sets,
    data=st.data(),
    delimiter=st.sampled_from([",", ";", "\t"]),
    apply=st.booleans(),
)
def test_inventory_sheets_with_any_cells_plan_and_apply_without_a_crash(
    org, columns, data, delimiter, apply
):
    rows = data.draw(sheet_rows(list(columns)))
    raw = as_csv(list(columns), rows, delimiter)
    try:
        preview = inventory.preview_file(raw, "meters.csv", org.admin)
    except inventory_parse.ImportFileError as exc:
        assert str(exc)
        return
    for row in preview.rows:
        assert row.action in {"create", "update", "unchanged", "error"}
        if row.action == "error":
            assert row.errors and all(isinstance(e, str) and e for e in row.errors)
    if apply:
        result = inventory.apply_file(raw, "meters.csv", org.admin)
        assert result is not None


xlsx_cell = st.one_of(
    cell,
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2100, 1, 1)),
    dates,
    st.booleans(),
    st.none(),
)


@FUZZ
@given(
    rows=st.lists(
        st.fixed_dictionaries({c: xlsx_cell for c in inventory_parse.ALL_COLUMNS}), max_size=4
    )
)
def test_inventory_workbooks_with_any_cell_types_plan_without_a_crash(org, rows):
    raw = inventory_parse.write_xlsx(rows)
    preview = inventory.preview_file(raw, "meters.xlsx", org.admin)
    assert len(preview.rows) <= len(rows)


@FUZZ
@given(value=st.one_of(cell, xlsx_cell))
def test_inventory_cell_parsers_raise_only_value_error(value):
    for parse in (
        inventory_parse.parse_int,
        inventory_parse.parse_decimal,
        inventory_parse.parse_date,
    ):
        with contextlib.suppress(ValueError):  # the documented "not a number/date"
            parse(value)
    serial, problem = inventory_parse.parse_serial(value)
    assert isinstance(serial, str) and (problem is None or isinstance(problem, str))


# --- the logger history import -------------------------------------------------------------

HEADER = "timestamp,meter_id,V_L1_V,I_L1_A,P_total_kW,E_total_kWh"
stamps = st.one_of(
    st.datetimes(min_value=dt.datetime(2026, 3, 1), max_value=dt.datetime(2026, 5, 31)).map(
        lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
    ),
    st.datetimes(min_value=dt.datetime(2026, 3, 1), max_value=dt.datetime(2026, 5, 31)).map(
        lambda d: d.strftime("%d/%m/%Y %H:%M")
    ),
    date_texts,
    junk,
    st.sampled_from(["2026-04-04T10:00:00+03:00", "2026-04-04T10:00:00Z", "", "24:00"]),
)
meter_ids = st.one_of(
    st.sampled_from(["10", "100", "meter_010", "010", "0", "248", "-1", "1e3", ""]), junk
)
logger_numbers = st.one_of(numbers.map(str), st.sampled_from(["", "nan", "inf", "-0", "1,5"]))
logger_rows = st.lists(
    st.tuples(stamps, meter_ids, logger_numbers, logger_numbers, logger_numbers, logger_numbers),
    max_size=8,
)


def logger_file(rows, header=HEADER) -> bytes:
    lines = [header] + [",".join(r) for r in rows]
    return "\n".join(lines).encode()


@FUZZ
@given(
    rows=logger_rows,
    header=st.one_of(st.just(HEADER), junk),
    name=st.sampled_from(
        ["meter_010_2026-04-04.csv", "data/meter_100/meter_100_2026-04-05.csv", "x.csv"]
    ),
    extra=st.one_of(st.just(b""), st.binary(max_size=60)),
)
def test_history_files_of_any_rows_import_without_a_crash(bus, rows, header, name, extra):
    data = logger_file(rows, header) + extra
    source = history_import.Source(name, lambda: data)
    summary = history_import.import_sources(gateway=bus.gateway, sources=[source], label="fuzz")
    assert summary.files == 1
    assert summary.accepted + summary.duplicates <= summary.rows
    assert all(p.reason for p in summary.problems)


@FUZZ
@given(data=st.binary(max_size=300), name=st.sampled_from(["h.zip", "h.csv", "h.txt", "h"]))
def test_history_uploads_of_any_bytes_are_sources_or_a_history_file_error(bus, data, name):
    try:
        sources = history_import.sources_from_upload(name, data, max_bytes=10_000)
    except history_import.HistoryFileError as exc:
        assert str(exc)
        return
    history_import.import_sources(gateway=bus.gateway, sources=sources, label="fuzz")


@FUZZ
@given(rows=logger_rows, names=st.lists(st.text(min_size=1, max_size=30), max_size=3))
def test_history_zips_of_any_members_import_without_a_crash(bus, rows, names):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/meter_010/meter_010_2026-04-04.csv", logger_file(rows))
        for n, name in enumerate(names):
            archive.writestr(f"{n}-{name}.csv", logger_file(rows[:1]))
    sources = history_import.sources_from_upload("h.zip", buffer.getvalue(), max_bytes=10**6)
    history_import.import_sources(gateway=bus.gateway, sources=sources, label="fuzz")


# --- USSD and inbound SMS ----------------------------------------------------------------

APOLOGIES = {texts.text("unavailable", lang) for lang in texts.LANGUAGES}
field_text = st.one_of(
    st.text(max_size=20),
    st.text(min_size=90, max_size=300),
    st.sampled_from(["\x00", "a\x00b", "*\x00*", "\ufeff", "\u202e1*2"]),
)
phones_sent = st.one_of(
    st.sampled_from(["+256772000001", "0772000001", "256772000001", "+254712000000"]),
    field_text,
)


@pytest.fixture
def callers(org):
    messages.install_templates()
    customer = factories.customer(org.block_a, first_name="Amina", status="active")
    return customer


@FUZZ
@given(
    session=st.one_of(st.builds(lambda n: f"ATUid_{n}", st.integers()), field_text),
    phone=phones_sent,
    text=st.one_of(st.text(max_size=60), st.lists(st.text(max_size=8), max_size=45).map("*".join)),
    service=field_text,
    network=field_text,
)
def test_ussd_callback_takes_any_form(callers, session, phone, text, service, network):
    response = Client().post(
        "/ussd/africastalking/",
        {
            "sessionId": session,
            "phoneNumber": phone,
            "text": text,
            "serviceCode": service,
            "networkCode": network,
        },
    )
    if not session.replace("\x00", "") or not phone.replace("\x00", ""):
        assert response.status_code == 400  # required fields missing (NUL is dropped)
        return
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith(("CON ", "END ")) and len(body) <= 160
    assert body[4:] not in APOLOGIES


@FUZZ
@given(
    message_id=st.one_of(st.builds(lambda n: f"ATXid_{n}", st.integers()), field_text),
    sender=phones_sent,
    to=field_text,
    text=st.one_of(
        st.text(max_size=200),
        st.sampled_from(["BAL", "bal 1", "MCOMS USE", "help", "BILI", "salio"]),
    ),
)
def test_inbound_sms_takes_any_form(callers, message_id, sender, to, text):
    response = Client().post(
        "/sms/africastalking/", {"id": message_id, "from": sender, "to": to, "text": text}
    )
    given_both = message_id.replace("\x00", "") and sender.replace("\x00", "")
    assert response.status_code == (200 if given_both else 400)


@given(part=st.text(max_size=40))
def test_ussd_amount_and_sms_command_parsers_take_any_text(part):
    amount = parse_amount(part)
    assert amount is None or (isinstance(amount, Decimal) and amount >= 0)
    command, language = sms.parse(part)
    assert isinstance(command, str) and isinstance(language, str)
