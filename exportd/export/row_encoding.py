"""Rows from Python handlers, encoded as CSV or JSON Lines. Pure, no I/O.

Rows from SQL are formatted by Postgres; these are the rows a handler yields
(mappings of column name to value). The JSON forms match what Postgres writes
for SQL datasets: numeric (``Decimal``) as an exact JSON number, ``bytes`` as
base64, datetimes in ISO 8601 (with their offset when they have one).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from exportd.definitions.params.values import render


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # A JSON number has no NaN or Infinity; Postgres writes those as strings too.
        return orjson.Fragment(str(value)) if value.is_finite() else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def encode_jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(
        orjson.dumps(dict(row), default=_json_default, option=orjson.OPT_APPEND_NEWLINE)
        for row in rows
    )


def _csv_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()  # as Postgres writes bytea
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    # None as empty, booleans as true/false, dates and times in ISO 8601.
    return render(value)


def encode_csv(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None
) -> tuple[bytes, Sequence[str] | None]:
    """CSV for ``rows``; the first call (``columns`` None) writes the header taken from the
    first row's keys. Returns the text and the columns for the next call."""
    if not rows:
        return b"", columns
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if columns is None:
        columns = list(rows[0])
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_text(row.get(c)) for c in columns])
    return out.getvalue().encode("utf-8"), columns
