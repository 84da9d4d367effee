"""Excel's limits as decisions: when a sheet is full, what the next sheet is called,
how wide a column is."""

from __future__ import annotations

import pytest

from exportd.definitions.options.model import XlsxPolicy
from exportd.export.xlsx.limits import (
    MAX_SHEET_ROWS,
    column_letter,
    column_width,
    next_row,
    sheet_base,
    sheet_capacity,
    sheet_name,
)

NEW_SHEET = XlsxPolicy(rows_over_limit="new_sheet")
FAIL = XlsxPolicy(rows_over_limit="fail")


def test_excel_holds_1048575_data_rows_under_the_header() -> None:
    assert MAX_SHEET_ROWS == 1_048_576 - 1
    assert sheet_capacity(None) == MAX_SHEET_ROWS
    assert sheet_capacity(10) == 10
    assert sheet_capacity(5_000_000) == MAX_SHEET_ROWS


@pytest.mark.parametrize(
    ("rows", "split", "policy", "action"),
    [
        (0, None, NEW_SHEET, "write"),
        (MAX_SHEET_ROWS - 1, None, FAIL, "write"),
        (MAX_SHEET_ROWS, None, NEW_SHEET, "new_sheet"),
        (MAX_SHEET_ROWS, None, FAIL, "fail"),
        # The job's own split is what the job asked for, whatever the kind's policy.
        (9, 10, FAIL, "write"),
        (10, 10, FAIL, "new_sheet"),
        # A split larger than a sheet: Excel's limit comes first and the policy decides.
        (MAX_SHEET_ROWS, 2_000_000, FAIL, "fail"),
        (MAX_SHEET_ROWS, 2_000_000, NEW_SHEET, "new_sheet"),
    ],
)
def test_next_row(rows: int, split: int | None, policy: XlsxPolicy, action: str) -> None:
    assert next_row(rows, split, policy) == action


def test_a_lowered_limit_is_the_same_decision() -> None:
    assert next_row(2, None, FAIL, max_rows=3) == "write"
    assert next_row(3, None, FAIL, max_rows=3) == "fail"
    assert next_row(3, None, NEW_SHEET, max_rows=3) == "new_sheet"


def test_sheet_names_are_valid_for_excel() -> None:
    assert sheet_base("orders") == "orders"
    assert sheet_base("a[b]:c*d?e/f\\g") == "a_b__c_d_e_f_g"
    assert sheet_base("'quoted'") == "quoted"
    assert sheet_base("''") == "Sheet"
    assert sheet_base("x" * 40) == "x" * 31


def test_continued_sheets_are_numbered_and_fit_31_characters() -> None:
    assert sheet_name("orders", 1, []) == "orders"
    assert sheet_name("orders", 2, ["orders"]) == "orders (2)"
    long = "y" * 31
    assert sheet_name(long, 1, []) == long
    second = sheet_name(long, 2, [long])
    assert second == "y" * 27 + " (2)"
    assert len(second) == 31


def test_sheet_names_are_unique_ignoring_case() -> None:
    assert sheet_name("Orders", 1, ["orders"]) == "Orders (2)"
    assert sheet_name("a", 2, ["a", "a (2)"]) == "a (3)"
    # Excel keeps "History" for itself.
    assert sheet_name("history", 1, []) == "history (2)"


def test_column_letters() -> None:
    assert [column_letter(i) for i in (0, 25, 26, 27, 701, 702, 16383)] == [
        "A",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
        "XFD",
    ]


def test_column_widths_follow_type_and_label() -> None:
    assert column_width("id", "int4") == 12
    assert column_width("placed at", "timestamptz") == 20
    assert (
        column_width("a very long header for a flag", "bool")
        == len("a very long header for a flag") + 4
    )
    assert column_width("x" * 100, "text") == 60
