"""Cells written in Python (a handler's rows): the same rules as Postgres's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from exportd.export.xlsx.cells import (
    CellTooLong,
    cell,
    encode_rows,
    fit_text,
    number_fits,
    significant_digits,
    xml_text,
)
from exportd.export.xlsx.limits import MAX_CELL_CHARS, TRUNCATION_MARKER

ZURICH = ZoneInfo("Europe/Zurich")


@pytest.mark.parametrize(
    ("text", "digits"),
    [("0", 0), ("-0012.3400", 4), ("123456789012345", 15), ("0.000001", 1), ("1000", 1)],
)
def test_significant_digits(text: str, digits: int) -> None:
    assert significant_digits(text) == digits


@pytest.mark.parametrize(
    ("value", "fits"),
    [
        (Decimal("999999999999999"), True),
        (Decimal("1234567890123456"), False),  # 16 digits: Excel would round it
        (Decimal("1000000000000000000"), True),  # one significant digit
        (Decimal("0.1"), True),
        (Decimal("123456789012345678901234567890.000000001"), False),
        (Decimal("1e400"), False),
        (Decimal("1e-400"), False),
        (Decimal("NaN"), False),
        (Decimal("Infinity"), False),
        (Decimal(0), True),
    ],
)
def test_numbers_excel_holds_exactly(value: Decimal, fits: bool) -> None:
    assert number_fits(value) is fits


def test_numbers_past_15_digits_are_text() -> None:
    assert cell(12345678901234567, ZURICH) == (
        '<c t="inlineStr"><is><t xml:space="preserve">12345678901234567</t></is></c>'
    )
    assert cell(-5, ZURICH) == "<c><v>-5</v></c>"
    assert cell(Decimal("1.50"), ZURICH) == "<c><v>1.50</v></c>"
    assert cell(1.5, ZURICH) == "<c><v>1.5</v></c>"
    assert "NaN" in cell(float("nan"), ZURICH)


def test_booleans_and_null() -> None:
    assert cell(True, ZURICH) == '<c t="b"><v>1</v></c>'
    assert cell(False, ZURICH) == '<c t="b"><v>0</v></c>'
    assert cell(None, ZURICH) == "<c/>"


def test_dates_are_serials_with_a_display_format() -> None:
    assert cell(date(1900, 3, 1), ZURICH) == '<c s="1"><v>61</v></c>'
    assert cell(date(2025, 3, 30), ZURICH) == '<c s="1"><v>45746</v></c>'
    # Before 1900-03-01 Excel's serials are off by its 29 February 1900: text.
    assert "0001-01-01" in cell(date(1, 1, 1), ZURICH)


def test_aware_datetimes_are_wall_time_in_the_zone_across_dst() -> None:
    before = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)  # 01:30 CET
    after = datetime(2025, 3, 30, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert cell(before, ZURICH) == '<c s="2"><v>45746.0625000000</v></c>'
    assert cell(after, ZURICH) == '<c s="2"><v>45746.1458333333</v></c>'
    naive = datetime(2025, 3, 30, 1, 30)
    assert cell(naive, ZURICH) == cell(before, ZURICH)
    kolkata = datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert cell(kolkata, ZoneInfo("Asia/Kolkata")).startswith('<c s="2"><v>45658.5')


def test_text_is_never_a_formula_and_is_escaped() -> None:
    assert cell('=HYPERLINK("x")', ZURICH) == (
        '<c t="inlineStr"><is><t xml:space="preserve">=HYPERLINK("x")</t></is></c>'
    )
    assert xml_text("<script>&</script>") == "&lt;script&gt;&amp;&lt;/script&gt;"
    assert xml_text("a\r\nb\tc") == "a&#13;&#10;b\tc"


def test_characters_xml_cannot_hold_become_replacement_characters() -> None:
    assert xml_text("a\x00b\x01c\x1fd\ufffee\ud800") == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffd"


def test_json_arrays_and_bytes_are_their_text() -> None:
    assert ">{&quot;" not in cell({"a": [1, "x"]}, ZURICH)
    assert '{"a": [1, "x"]}' in cell({"a": [1, "x"]}, ZURICH)
    assert "\\x00ff" in cell(b"\x00\xff", ZURICH)


def test_long_text_is_truncated_with_a_marker_or_fails() -> None:
    long = "x" * (MAX_CELL_CHARS + 1)
    cut = fit_text(long, "truncate")
    assert len(cut) == MAX_CELL_CHARS
    assert cut.endswith(TRUNCATION_MARKER)
    assert fit_text("x" * MAX_CELL_CHARS, "fail") == "x" * MAX_CELL_CHARS
    with pytest.raises(CellTooLong):
        fit_text(long, "fail")


def test_rows_are_one_line_each_in_column_order() -> None:
    data = encode_rows([{"b": "two\nlines", "a": 1}, {"a": 2}], ["a", "b"], ZURICH, "truncate")
    lines = data.decode().splitlines()
    assert len(lines) == 2
    assert lines[1] == "<row><c><v>2</v></c><c/></row>"


def test_datetimes_at_the_ends_of_the_calendar_are_text() -> None:
    kiritimati = ZoneInfo("Pacific/Kiritimati")  # UTC+14: past 9999-12-31 for Python
    late = datetime(9999, 12, 31, 23, tzinfo=UTC)
    assert cell(late, kiritimati) == (
        '<c t="inlineStr"><is><t xml:space="preserve">9999-12-31 23:00:00+00:00</t></is></c>'
    )
    early = datetime(1, 1, 1, tzinfo=UTC)
    assert "0001-01-01 00:00:00+00:00" in cell(early, ZoneInfo("America/New_York"))
    # From 23:59:59.5 a reader shows the serial as 10000-01-01 (and from .9999995 its
    # double is 2958466): text.
    assert cell(datetime(9999, 12, 31, 23, 59, 59, 499999), UTC) == (
        '<c s="2"><v>2958465.9999942130</v></c>'
    )
    assert "9999-12-31 23:59:59.500000" in cell(datetime(9999, 12, 31, 23, 59, 59, 500000), UTC)
    assert "23:59:59.999995" in cell(datetime(9999, 12, 31, 23, 59, 59, 999995), UTC)


class _Float64(float):
    """A float subclass whose repr is not a number, as numpy's float64 is."""

    def __repr__(self) -> str:
        return f"np.float64({float(self)!r})"


def test_a_float_subclass_is_written_as_its_number() -> None:
    assert cell(_Float64(1.5), ZURICH) == "<c><v>1.5</v></c>"
