"""Reading and writing the operator's meter spreadsheet (CSV or XLSX), without the database.

The sheet's own columns come first, in the operator's order; MCOMS adds columns
for what the sheet lacks (shipping, retest and decommissioning steps, gateway,
phases, CT ratio) at the end. Cells are parsed leniently (Excel numbers, dates
and text all arrive here) and every problem is reported in words.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal, InvalidOperation

SERIAL = "Meter Serial Number"
TYPE = "Meter Type"
SITE = "Site Name"
LABEL = "Building/Customer"
ADDRESS = "Assigned Modbus Address"
STATUS = "Status"
NOTES = "Notes"
GATEWAY = "Gateway"
PHASES = "Phases"
CT_RATIO = "CT Ratio"

SHEET_COLUMNS = [
    SERIAL,
    TYPE,
    SITE,
    LABEL,
    ADDRESS,
    STATUS,
    "Date Assigned",
    "Date Converted",
    "Date Installed",
    "Date Commissioned",
    "Converted By",
    "Installed By",
    "Commissioned By",
    NOTES,
]
EXTRA_COLUMNS = [
    "Assigned By",
    "Date Shipped",
    "Shipped By",
    "Date Retest Needed",
    "Retest By",
    "Date Decommissioned",
    "Decommissioned By",
    GATEWAY,
    PHASES,
    CT_RATIO,
]
ALL_COLUMNS = SHEET_COLUMNS + EXTRA_COLUMNS
REQUIRED_COLUMNS = [SERIAL, TYPE, SITE, ADDRESS, STATUS]

# Lifecycle status → its (date column, signer column) in the sheet.
STEP_COLUMNS = {
    "assigned": ("Date Assigned", "Assigned By"),
    "converted": ("Date Converted", "Converted By"),
    "shipped": ("Date Shipped", "Shipped By"),
    "installed": ("Date Installed", "Installed By"),
    "commissioned": ("Date Commissioned", "Commissioned By"),
    "retest_needed": ("Date Retest Needed", "Retest By"),
    "decommissioned": ("Date Decommissioned", "Decommissioned By"),
}

LINE = "_line"  # key holding each row's spreadsheet line number
MAX_ROWS = 20_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DATE_HELP = "use 2026-04-01 or 01/04/2026"


class ImportFileError(Exception):
    """The file as a whole cannot be read as the meter spreadsheet; the message says why."""


class Table(list):
    """The sheet's rows (dicts keyed by canonical column name), plus warnings about the file."""

    def __init__(self, rows=(), warnings=None):
        super().__init__(rows)
        self.warnings: list[str] = list(warnings or [])


def norm_key(name: object) -> str:
    """A header or site name for matching: lower case, without any whitespace."""
    return re.sub(r"\s+", "", str(name or "")).lower()


_CANONICAL = {norm_key(c): c for c in ALL_COLUMNS}


def read_table(data: bytes, filename: str) -> Table:
    """The rows of a CSV or XLSX meter sheet, each with its line number under ``LINE``.

    Header names match case- and space-insensitively; blank rows are skipped;
    unknown columns become warnings; missing required columns raise
    :class:`ImportFileError`, as does anything that is not a readable sheet.
    """
    name = (filename or "").lower()
    if name.endswith(".xls"):
        raise ImportFileError("Old .xls workbooks are not supported: save as .xlsx or CSV.")
    if name.endswith((".xlsx", ".xlsm")) or data[:4] == b"PK\x03\x04":
        raw_rows = _xlsx_rows(data)
    else:
        raw_rows = _csv_rows(data)
    return _to_table(raw_rows)


def _csv_rows(data: bytes) -> list[tuple[int, list]]:
    if b"\x00" in data:
        raise ImportFileError("This is not a text (CSV) file; upload CSV or XLSX.")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFileError("The file is neither UTF-8 nor Windows-1252 text.")
    first = text.split("\n", 1)[0]
    # Spreadsheets saved in some locales separate with ';' or tabs.
    delimiter = max([",", ";", "\t"], key=first.count)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows = []
        for number, row in enumerate(reader, start=1):
            if number > MAX_ROWS:
                raise ImportFileError(f"The file has more than {MAX_ROWS} rows; split it.")
            rows.append((number, row))
        return rows
    except csv.Error as exc:
        raise ImportFileError(f"The CSV file is malformed: {exc}.") from exc


def _xlsx_rows(data: bytes) -> list[tuple[int, list]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheets = [_sheet_rows(sheet) for sheet in book.worksheets]
        finally:
            book.close()
    except ImportFileError:
        raise
    except Exception as exc:
        # openpyxl and zipfile raise many kinds of error on damaged files; all mean the same.
        raise ImportFileError("The file could not be read as an Excel (.xlsx) workbook.") from exc
    if not sheets:
        raise ImportFileError("The workbook has no sheets.")
    # The meter list need not be the first sheet: take the first one with its header.
    return next((rows for rows in sheets if _header_at(rows) is not None), sheets[0])


def _sheet_rows(sheet) -> list[tuple[int, list]]:
    # Some programs write a wrong sheet size; without this, columns or rows go missing.
    sheet.reset_dimensions()
    rows = []
    for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        if number > MAX_ROWS:
            raise ImportFileError(f"A sheet has more than {MAX_ROWS} rows; split it.")
        rows.append((number, list(row)))
    return rows


def _header_at(rows: list[tuple[int, list]]) -> int | None:
    """Index of the header (the row naming the serial) among the first non-blank rows."""
    rows = [r for _, r in rows if not _blank(r)][:10]
    return next(
        (i for i, r in enumerate(rows) if norm_key(SERIAL) in {norm_key(c) for c in r}), None
    )


def _blank(row: list) -> bool:
    return all(cell is None or str(cell).strip() == "" for cell in row)


def _to_table(raw_rows: list[tuple[int, list]]) -> Table:
    rows = [(n, r) for n, r in raw_rows if not _blank(r)]
    if not rows:
        raise ImportFileError("The file is empty.")
    # A title or two above the header is common; the header is the row naming the serial.
    header_at = _header_at(rows) or 0
    header_line, header = rows[header_at]
    columns: list[str | None] = []
    warnings, seen = [], set()
    for cell in header:
        text = str(cell).strip() if cell is not None else ""
        column = _CANONICAL.get(norm_key(text))
        if column is None:
            if text:
                warnings.append(f"Column “{text}” is not known and was ignored.")
        elif column in seen:
            raise ImportFileError(f"Column “{column}” appears more than once.")
        else:
            seen.add(column)
        columns.append(column)
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if missing:
        raise ImportFileError(
            f"Missing required column(s): {', '.join(missing)} (header on line {header_line})."
        )
    table = Table(warnings=warnings)
    for number, row in rows[header_at + 1 :]:
        record = {LINE: number}
        for column, cell in zip(columns, row, strict=False):
            if column is not None:
                record[column] = cell
        table.append(record)
    return table


# --- cells ---------------------------------------------------------------------------------


def text(value: object) -> str:
    """A cell as trimmed text; whole numbers lose Excel's '.0'; a CSV formula guard is undone."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    result = str(value).strip()
    if result[:1] == "'" and result[1:2] in FORMULA_START:
        result = result[1:]
    return result


def parse_serial(value: object, *, digits: bool = True) -> tuple[str, str | None]:
    """(serial, problem): the sheet's (CHINT) serials are exactly 12 digits."""
    if isinstance(value, float) and not value.is_integer():
        return str(value), "looks like a number Excel rounded; format the column as text"
    serial = re.sub(r"\s+", "", text(value)).lstrip("'")
    if not serial:
        return "", "Meter Serial Number is blank"
    if re.fullmatch(r"\d(\.\d+)?E\+\d+", serial, flags=re.IGNORECASE):
        return serial, (
            f"serial {serial!r} is in Excel's scientific notation; format the column as text"
        )
    if len(serial) > 20:
        return serial[:20], "serial is longer than 20 characters"
    if digits and not re.fullmatch(r"\d{12}", serial):
        return serial, f"serial {serial!r} is not exactly 12 digits"
    return serial, None


def parse_int(value: object) -> int | None:
    """A whole number from a cell, or None when blank; ValueError when not a whole number."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(value)
    raw = text(value)
    if not raw:
        return None
    if re.fullmatch(r"[+-]?\d{1,6}(\.0+)?", raw):
        return int(raw.split(".")[0])
    raise ValueError(raw)


def parse_decimal(value: object) -> Decimal | None:
    """A decimal from a cell, or None when blank; ValueError when not a finite number."""
    raw = text(value).replace(",", ".")
    if not raw:
        return None
    if len(raw) > 20:
        raise ValueError(raw)
    try:
        number = Decimal(raw)
    except InvalidOperation as exc:
        raise ValueError(raw) from exc
    if not number.is_finite():
        raise ValueError(raw)
    return number


def parse_date(value: object) -> dt.date | None:
    """A date from an Excel date cell, an ISO date or a day-first d/m/Y date; None when blank.

    Raises ValueError when the cell holds something else.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        # An Excel serial day number that lost its date format.
        if 20000 <= value <= 80000:
            return dt.date(1899, 12, 30) + dt.timedelta(days=int(value))
        raise ValueError(value)
    raw = text(value)
    if not raw:
        return None
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?", raw)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", raw)
        if not match:
            raise ValueError(raw)
        day, month, year = (int(g) for g in match.groups())
    return dt.date(year, month, day)


def lookup(value: object, choices: dict[str, str]) -> str | None:
    """The choice whose key matches the cell ignoring case, spaces, '-' and '_'; else None."""
    return choices.get(re.sub(r"[\s_\-()]+", "", text(value)).lower())


def choice_keys(pairs) -> dict[str, str]:
    """Lookup keys for (value, label) choices, matching either the value or the label."""
    keys = {}
    for value, label in pairs:
        for name in (value, label):
            keys[re.sub(r"[\s_\-()]+", "", str(name)).lower()] = value
    return keys


# --- writing -------------------------------------------------------------------------------


def write_csv(rows: list[dict]) -> bytes:
    """The rows as CSV with every column, UTF-8 with a BOM so Excel reads it correctly."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(ALL_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in ALL_COLUMNS])
    return out.getvalue().encode("utf-8-sig")


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    result = str(value)
    # A cell starting like a formula would run as one when the CSV is opened in Excel.
    if result.startswith(FORMULA_START):
        result = "'" + result
    return result


def write_xlsx(rows: list[dict]) -> bytes:
    """The rows as one XLSX sheet with every column; dates as real date cells."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook()
    sheet = book.active
    sheet.title = "Meters"
    sheet.append(ALL_COLUMNS)
    for row in rows:
        values = [row.get(c) for c in ALL_COLUMNS]
        # Control characters pasted into notes are not allowed in a workbook; drop them.
        sheet.append(
            [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in values]
        )
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, dt.date):
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text that merely looks like a formula stays text
    for index, column in enumerate(ALL_COLUMNS):
        letter = sheet.cell(row=1, column=index + 1).column_letter
        sheet.column_dimensions[letter].width = max(12, len(column) + 2)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
