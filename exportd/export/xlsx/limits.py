"""Excel's limits and the decisions they force: sheet capacity, sheet names, column
widths. Pure, no I/O.

Excel holds 1,048,576 rows per sheet (one of them the header), 32,767 characters per
cell and 31 characters per sheet name, and refuses ``[ ] : * ? / \\`` in a name.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from exportd.definitions.options.model import XlsxPolicy

# Data rows a sheet holds under its header row.
MAX_SHEET_ROWS = 1_048_575
# Characters a cell holds; a longer text is truncated to fit, ending with the marker.
MAX_CELL_CHARS = 32_767
TRUNCATION_MARKER = " [truncated]"
MAX_SHEET_NAME = 31
_BAD_NAME_CHARS = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))
# Excel keeps this name for itself.
_RESERVED_NAMES = frozenset({"history"})

RowAction = Literal["write", "new_sheet", "fail"]


def sheet_capacity(split_rows: int | None, max_rows: int = MAX_SHEET_ROWS) -> int:
    """The data rows one sheet takes: ``split_rows`` when the job asks for fewer than
    Excel holds, else Excel's limit."""
    return max_rows if split_rows is None else min(split_rows, max_rows)


def next_row(
    rows_in_sheet: int,
    split_rows: int | None,
    policy: XlsxPolicy,
    max_rows: int = MAX_SHEET_ROWS,
) -> RowAction:
    """What to do with one more data row when the sheet holds ``rows_in_sheet``: write
    it there, start a new sheet (the job's ``split_rows``, or past Excel's limit when the
    kind says ``new_sheet``), or fail the job (past Excel's limit when it says ``fail``)."""
    if rows_in_sheet < sheet_capacity(split_rows, max_rows):
        return "write"
    if split_rows is not None and split_rows < max_rows:
        return "new_sheet"
    return "new_sheet" if policy.rows_over_limit == "new_sheet" else "fail"


def sheet_base(dataset: str) -> str:
    """A dataset's name as Excel takes it for a sheet: each forbidden character as
    ``_``, no apostrophe at either end, at most 31 characters, never empty."""
    name = dataset.translate(_BAD_NAME_CHARS).strip("'")
    return name[:MAX_SHEET_NAME] or "Sheet"


def sheet_name(base: str, part: int, taken: Collection[str]) -> str:
    """The name of part ``part`` (1-based) of the sheets of ``base``: ``base`` then
    ``base (2)``, ``base (3)``, shortened to fit 31 characters; the next free number when
    the name is already ``taken`` (compared as Excel does, ignoring case)."""
    used = {t.casefold() for t in taken} | _RESERVED_NAMES
    number = part
    while True:
        suffix = "" if number == 1 else f" ({number})"
        name = base[: MAX_SHEET_NAME - len(suffix)] + suffix
        if name.casefold() not in used:
            return name
        number += 1


def column_letter(index: int) -> str:
    """The letters of 0-based column ``index``: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# Widths in characters by kind of cell, for what the rows hold (they stream, so the
# widths are decided before the first row).
_TYPE_WIDTHS = {
    "bool": 7,
    "int2": 8,
    "int4": 12,
    "int8": 16,
    "oid": 12,
    "numeric": 16,
    "float4": 14,
    "float8": 16,
    "date": 11,
    "timestamp": 20,
    "timestamptz": 20,
    "uuid": 37,
}
_TEXT_WIDTH = 24
_MAX_WIDTH = 60


def column_width(label: str, type_name: str) -> int:
    """A column's width in characters: its type's usual width, widened to show the
    header (and its filter button), at most 60."""
    return min(_MAX_WIDTH, max(_TYPE_WIDTHS.get(type_name, _TEXT_WIDTH), len(label) + 4))
