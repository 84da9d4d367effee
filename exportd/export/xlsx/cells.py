"""Cells of SpreadsheetML, written in Python: a sheet's header and a handler's rows.
Pure, no I/O.

SQL datasets get the same cells from Postgres (``expressions``); the rules are one:

- integers and exact numerics: a number, unless it has more than 15 significant
  digits (Excel keeps 15 and would round the rest away silently) or lies outside
  Excel's range: then its exact text;
- floats: a number (NaN and the infinities as text); booleans: a boolean;
- dates and timestamps from 1900-03-01 to 9999-12-31: an Excel date serial with a
  display format (a timestamptz in the job's time zone, as local wall time); others
  (earlier, later, infinity) as their ISO text;
- everything else as an inline string of its text, never a formula: JSON and
  arrays as their text, bytea as ``\\x`` and hex; NULL as an empty cell.

In text, each character XML 1.0 cannot hold (the C0 controls but tab, line feed and
carriage return; U+FFFE, U+FFFF; a lone surrogate) becomes U+FFFD, and a text over
32,767 characters is cut to fit, ending with ``TRUNCATION_MARKER``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from exportd.definitions.options.model import LongText
from exportd.export.xlsx.limits import MAX_CELL_CHARS, TRUNCATION_MARKER

# Style indexes of styles.xml (parts.STYLES): 1 a date, 2 a date and time, 3 the header.
DATE_STYLE = 1
DATETIME_STYLE = 2
HEADER_STYLE = 3
MAX_DIGITS = 15
# Excel's largest and smallest magnitudes.
_LARGEST = Decimal("9.99999999999999e307")
_SMALLEST = Decimal("1e-307")
_EPOCH = datetime(1899, 12, 30)
_FIRST_DAY = date(1900, 3, 1)  # before it, Excel's serials are off by its 1900 leap day
_LAST_DAY = date(9999, 12, 31)
# The last moments of 9999 a serial can carry: from 23:59:59.5 on, a reader shows it
# (to the second) as 10000-01-01, and past 23:59:59.9999995 its double is 2958466,
# a day Excel does not have (openpyxl reads #VALUE!). Later ones are text.
_LAST_MOMENT = datetime(9999, 12, 31, 23, 59, 59, 499999)
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": "&#10;", "\r": "&#13;"})
EMPTY = "<c/>"


class CellTooLong(Exception):
    """A text over Excel's 32,767 characters, where the kind says ``long_text = "fail"``."""


def xml_text(text: str) -> str:
    """``text`` as XML character data: invalid characters as U+FFFD, markup escaped,
    CR and LF as character references (so that each row of a sheet is one line)."""
    return _INVALID.sub("\ufffd", text).translate(_ESCAPES)


def fit_text(text: str, long_text: LongText) -> str:
    """``text`` within Excel's cell limit: cut to end with the marker, or CellTooLong."""
    if len(text) <= MAX_CELL_CHARS:
        return text
    if long_text == "fail":
        raise CellTooLong(len(text))
    return text[: MAX_CELL_CHARS - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER


def text_cell(text: str, long_text: LongText = "truncate", style: int | None = None) -> str:
    s = f' s="{style}"' if style is not None else ""
    body = xml_text(fit_text(text, long_text))
    return f'<c{s} t="inlineStr"><is><t xml:space="preserve">{body}</t></is></c>'


def significant_digits(text: str) -> int:
    """Digits of a plain decimal text (``-0012.3400``) without leading or trailing zeros."""
    return len(text.replace("-", "").replace(".", "").strip("0"))


def number_fits(value: Decimal) -> bool:
    """Whether Excel holds ``value`` exactly: finite, at most 15 significant digits and
    within its range (or zero)."""
    if not value.is_finite():
        return False
    if value == 0:
        return True
    return _SMALLEST <= abs(value) <= _LARGEST and significant_digits(plain(value)) <= MAX_DIGITS


def plain(value: Decimal) -> str:
    """``value`` as Postgres writes a numeric: positional, never an exponent."""
    return format(value, "f")


def number_cell(text: str) -> str:
    return f"<c><v>{text}</v></c>"


def serial(moment: datetime) -> str:
    """A wall-clock time as an Excel serial: days since 1899-12-30, to 10 decimals."""
    delta = moment.replace(tzinfo=None) - _EPOCH
    days = Decimal(delta.days) + Decimal(delta.seconds * 1_000_000 + delta.microseconds) / (
        Decimal(86_400_000_000)
    )
    return plain(round(days, 10))


def cell(value: Any, zone: tzinfo, long_text: LongText = "truncate") -> str:
    """One value a handler yielded as a cell. Aware datetimes are shown in ``zone``."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return f'<c t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | Decimal):
        number = Decimal(value)
        text = plain(number) if number.is_finite() else str(value)
        return number_cell(text) if number_fits(number) else text_cell(text)
    if isinstance(value, float):
        if math.isfinite(value):
            # float.__repr__: a subclass (numpy's float64) may repr as "np.float64(1.5)".
            return number_cell(float.__repr__(value))
        return text_cell("NaN" if math.isnan(value) else ("Infinity", "-Infinity")[value < 0])
    if isinstance(value, datetime):
        return datetime_cell(value, zone)
    if isinstance(value, date):
        if _FIRST_DAY <= value <= _LAST_DAY:
            return f'<c s="{DATE_STYLE}"><v>{(value - _EPOCH.date()).days}</v></c>'
        return text_cell(value.isoformat())
    if isinstance(value, bytes | bytearray | memoryview):
        return text_cell("\\x" + bytes(value).hex(), long_text)
    if isinstance(value, dict | list | tuple):
        return text_cell(json.dumps(value, default=str, ensure_ascii=False), long_text)
    if isinstance(value, time | timedelta):
        return text_cell(str(value), long_text)
    return text_cell(str(value), long_text)


def datetime_cell(value: datetime, zone: tzinfo) -> str:
    """A datetime as a serial, shown in ``zone`` when aware; out of Excel's range (or of
    Python's, when the zone moves it past year 1 or 9999) as its ISO text."""
    try:
        local = value.astimezone(zone) if value.tzinfo is not None else value
    except OverflowError:
        return text_cell(value.isoformat(sep=" "))
    if local.date() >= _FIRST_DAY and local.replace(tzinfo=None) <= _LAST_MOMENT:
        return f'<c s="{DATETIME_STYLE}"><v>{serial(local)}</v></c>'
    return text_cell(local.isoformat(sep=" "))


def header_row(labels: Sequence[str]) -> str:
    """The bold header row, one line."""
    return "<row>" + "".join(text_cell(label, style=HEADER_STYLE) for label in labels) + "</row>\n"


def encode_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    zone: tzinfo,
    long_text: LongText,
) -> bytes:
    """Rows of a handler as sheet rows, one line each, their cells in ``columns``'s order
    (a name a row lacks is an empty cell). Raises CellTooLong as ``fit_text`` does."""
    return "".join(
        "<row>" + "".join(cell(row.get(c), zone, long_text) for c in columns) + "</row>\n"
        for row in rows
    ).encode("utf-8")
