"""Rows from Python handlers, encoded as CSV or JSON Lines as a job's options ask. Pure,
no I/O.

Rows from SQL are formatted by Postgres; these are the rows a handler yields (mappings
of column name to value). The JSON forms match what Postgres writes for SQL datasets:
numeric (``Decimal``) as an exact JSON number, ``bytes`` as base64, datetimes in ISO 8601
(with their offset when they have one). The options apply as they do to SQL datasets
(see ``exportd.export.projection``): the columns and their labels, the CSV dialect, the
formula guard on ``str`` values, a decimal comma for ``Decimal`` and ``float``, big
numbers as JSON strings, and aware datetimes written in the job's time zone. A
dataset's columns are its first row's keys.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from exportd.definitions.options.model import CsvOptions, JobOptions
from exportd.definitions.params.spec import InvalidParams, ParamError
from exportd.definitions.params.values import render
from exportd.export.columns import choose_columns

# The largest integer a double (a JavaScript number) holds exactly: 2^53 - 1.
SAFE_INTEGER = 2**53 - 1
# Significant digits a double carries exactly.
SAFE_DIGITS = 15
# OWASP's list of the first characters a spreadsheet takes a cell as a formula for.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_LINE = orjson.OPT_APPEND_NEWLINE


@dataclass(frozen=True)
class RowFormat:
    """How a handler's rows are written: the job's options for one dataset."""

    columns: tuple[str, ...] | None = None  # chosen, in order; None: the first row's keys
    labels: Mapping[str, str] = field(default_factory=dict)  # CSV header by column name
    csv: CsvOptions = field(default_factory=CsvOptions)
    big_numbers: bool = False  # JSON: unsafe integers and long numerics as strings
    # Aware datetimes are written in it; None (no timezone option): as the handler gave them.
    timezone: tzinfo | None = None
    what: str = "the dataset"  # named in an error about its columns


def significant_digits(value: Decimal) -> int:
    """Digits of a finite ``value`` between its first and last non-zero digit (0 for 0)."""
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")
    return len(digits)


def guarded(text: str) -> str:
    """``text`` with a leading ``'`` when it starts like a formula (OWASP CSV injection)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _in_zone(value: Any, zone: tzinfo | None) -> Any:
    if zone is not None and isinstance(value, datetime) and value.utcoffset() is not None:
        try:
            return value.astimezone(zone)
        except OverflowError:
            # The zone moves it past year 1 or 9999: the same moment, in its own offset.
            return value
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # A JSON number has no NaN or Infinity; Postgres writes those as strings too.
        return orjson.Fragment(str(value)) if value.is_finite() else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def json_value(value: Any, fmt: RowFormat) -> Any:
    """A top-level value as the JSON options ask (nested values are written as they are)."""
    if fmt.big_numbers:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > SAFE_INTEGER:
            return str(value)
        if (
            isinstance(value, Decimal)
            and value.is_finite()
            and significant_digits(value) > SAFE_DIGITS
        ):
            return str(value)
    return _in_zone(value, fmt.timezone)


def csv_text(value: Any, fmt: RowFormat) -> str | None:
    """A value as CSV text, None for NULL: bytes as ``\\x`` hex (as Postgres writes
    bytea), dicts and lists as JSON text, booleans as true/false, dates and times in ISO
    8601; then the formula guard and the decimal comma as the options ask."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, str):
        return guarded(value) if fmt.csv.formula_guard else value
    if fmt.csv.decimal_comma and isinstance(value, Decimal | float):
        return render(value).replace(".", ",")
    return render(_in_zone(value, fmt.timezone))


def csv_field(text: str | None, csv: CsvOptions) -> str:
    """One CSV field: NULL as the null text; a value quoted (its quotes doubled) when it
    holds the delimiter, a quote, CR or LF, or would read as NULL."""
    if text is None:
        return csv.null
    if (
        csv.delimiter in text
        or '"' in text
        or "\n" in text
        or "\r" in text
        or (text == csv.null and text != "")
    ):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_record(fields: Sequence[str | None], csv: CsvOptions) -> str:
    line = csv.delimiter.join(csv_field(text, csv) for text in fields)
    # A record of one empty field would be an empty line, which readers skip.
    return ('""' if line == "" and len(fields) == 1 else line) + "\n"


class RowEncoder:
    """Encodes a handler dataset's rows, a batch at a time (call ``encode`` from one
    thread at a time). The first row decides the columns: its keys, or those of them
    the job chose (InvalidParams naming the keys it has, for a name it lacks)."""

    def __init__(self, encoding: str, fmt: RowFormat | None = None) -> None:
        self._csv = encoding == "csv"
        self._fmt = fmt or RowFormat()
        self._columns: list[Any] | None = None

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> bytes:
        if not rows:
            return b""
        head = ""
        if self._columns is None:
            self._columns, labels = self._choose(rows[0])
            if self._csv and self._fmt.csv.header:
                head = csv_record(labels, self._fmt.csv)
        if self._csv:
            return (head + self._csv_rows(rows, self._columns)).encode("utf-8")
        return self._json_rows(rows, self._columns)

    def _choose(self, first: Mapping[Any, Any]) -> tuple[list[Any], list[str]]:
        """The keys to write, in order, and their headers."""
        keys = {str(key): key for key in first}
        available = [(name, 0, "", "") for name in keys]
        chosen = choose_columns(available, self._fmt.columns, self._fmt.labels, self._fmt.what)
        return [keys[c.name] for c in chosen], [c.label for c in chosen]

    def _csv_rows(self, rows: Iterable[Mapping[str, Any]], columns: list[Any]) -> str:
        fmt = self._fmt
        return "".join(
            csv_record([csv_text(row.get(c), fmt) for c in columns], fmt.csv) for row in rows
        )

    def _json_rows(self, rows: Iterable[Mapping[str, Any]], columns: list[Any]) -> bytes:
        return b"".join(
            orjson.dumps(self._json_object(row, columns), default=_json_default, option=_LINE)
            for row in rows
        )

    def _json_object(self, row: Mapping[str, Any], columns: list[Any]) -> dict[Any, Any]:
        fmt = self._fmt
        if fmt.columns is not None:
            return {c: json_value(row.get(c), fmt) for c in columns}
        if fmt.big_numbers or fmt.timezone is not None:
            # Without a choice of columns, each row keeps its own keys, as before.
            return {k: json_value(v, fmt) for k, v in row.items()}
        return dict(row)


def row_format_for(
    options: JobOptions, labels: Mapping[str, str], dataset: str, encoding: str, what: str
) -> RowFormat:
    """How a handler dataset's rows are written for a job's ``options``, in ``encoding``
    (``csv`` or ``jsonl``): CSV options only in CSV, JSON options only in JSON. Raises
    InvalidParams (``options.timezone``) for a zone Python's zone database lacks."""
    zone: tzinfo | None = None
    if options.timezone is not None:
        try:
            zone = ZoneInfo(options.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidParams(
                [
                    ParamError(
                        "options.timezone",
                        "unknown_zone",
                        f"options.timezone: {options.timezone!r} is not a time zone "
                        "Python's zone database knows",
                    )
                ]
            ) from None
    csv = options.csv if encoding == "csv" else CsvOptions()
    return RowFormat(
        columns=options.columns_for(dataset),
        labels=labels if encoding == "csv" else {},
        csv=csv,
        big_numbers=encoding == "jsonl" and options.json.big_numbers == "string",
        timezone=zone,
        what=what,
    )
