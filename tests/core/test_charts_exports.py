import io
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from openpyxl import load_workbook

from mcoms.core.charts import Series, chart, nice_top
from mcoms.core.exports import as_csv, export_response


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1.0), (0.7, 1.0), (1.2, 2.0), (2.2, 2.5), (3, 5.0), (7.5, 10.0), (180, 200)],
)
def test_the_axis_ends_at_a_round_number(value, top):
    assert nice_top(value) == top


def test_bars_stand_on_the_axis_and_scale_with_their_values():
    c = chart(["Mon", "Tue"], [Series("kWh", [10, 5])], title="Usage", unit="kWh")
    tall, short = c.bars
    assert tall["y"] + tall["h"] == pytest.approx(c.plot_bottom, abs=0.2)
    assert tall["h"] == pytest.approx(2 * short["h"], abs=0.2)
    assert c.table_rows == [["Mon", "10.0"], ["Tue", "5.0"]]


def test_a_gap_is_not_zero():
    c = chart(
        ["1", "2", "3", "4"],
        [Series("now", [1, None, 2, 3], kind="line"), Series("before", [1, 1, None, None])],
        title="t",
        unit="kWh",
    )
    assert len(c.lines) == 2  # the line breaks at the gap
    assert len(c.bars) == 2
    assert c.table_rows[1] == ["2", "–", "1.0"]


def test_no_data_says_so_and_still_renders():
    c = chart(["a"], [Series("x", [None])], title="Nothing", unit="kWh")
    assert c.empty
    html = render_to_string("core/_chart.html", {"chart": c})
    assert "no data for this period" in html and "<svg viewBox" not in html


def test_the_template_draws_the_bars_lines_and_table():
    c = chart(
        ["Jan", "Feb"],
        [Series("This year", [Decimal("3.5"), 4]), Series("Last year", [2, 3], kind="line")],
        title="Monthly usage",
        unit="kWh",
    )
    html = render_to_string("core/_chart.html", {"chart": c})
    assert html.count("<rect x=") == 2 and "<polyline" in html
    assert 'aria-label="Monthly usage"' in html and '<th scope="row">Feb</th>' in html


def test_csv_defuses_formulas_and_opens_in_excel_as_utf8():
    body = as_csv(["name", "amount"], [["=HYPERLINK(1)", 5], ["Nakato", Decimal("1.50")]])
    text = body.decode("utf-8")
    assert text.startswith("\ufeffname,amount")
    assert "'=HYPERLINK(1),5" in text and "Nakato,1.50" in text


def test_excel_keeps_numbers_as_numbers():
    response = export_response("xlsx", "arrears", ["site", "kwh"], [["Block A", Decimal("12.5")]])
    assert response["Content-Disposition"] == 'attachment; filename="arrears.xlsx"'
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [c.value for c in sheet[2]] == ["Block A", 12.5]


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="csv, xlsx"):
        export_response("pdf", "x", ["a"], [])
