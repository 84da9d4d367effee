"""A handler's rows encoded as the options ask."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from exportd.definitions.options.model import CsvOptions, JobOptions
from exportd.definitions.params.spec import InvalidParams
from exportd.export.row_encoding import (
    RowEncoder,
    RowFormat,
    guarded,
    row_format_for,
    significant_digits,
)


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("0", 0),
        ("1E+20", 1),
        ("100000000000000000000", 1),
        ("0.000123", 3),
        ("123.4500", 5),
        ("-9007199254740993", 16),
        ("123456789012345", 15),
    ],
)
def test_significant_digits(value: str, digits: int) -> None:
    assert significant_digits(Decimal(value)) == digits


def test_the_guard_takes_owasps_list() -> None:
    for payload in ("=1", "+1", "-2+3", "@SUM(1)", "\tx", "\rx"):
        assert guarded(payload) == "'" + payload
    # Only the first character, as OWASP lists them: spreadsheets open these as text.
    for safe in ("", "a=1", " =1", "\n=1", "\uff1d1+1", "'=1", "5"):
        assert guarded(safe) == safe


def test_default_csv_is_as_before() -> None:
    encoder = RowEncoder("csv")
    rows = [{"a": 1, "b": "x,y", "c": None, "d": True}, {"a": 2, "b": "", "d": b"\x01"}]
    assert encoder.encode(rows) == b'a,b,c,d\n1,"x,y",,true\n2,,,\\x01\n'
    assert encoder.encode([{"a": 3}]) == b"3,,,\n"


def test_the_null_text_is_distinct_from_the_same_text() -> None:
    encoder = RowEncoder("csv", RowFormat(csv=CsvOptions(null="NULL", header=False)))
    assert encoder.encode([{"a": None, "b": "NULL", "c": "\r"}]) == b'NULL,"NULL","\r"\n'


def test_json_keeps_each_rows_keys_without_a_choice_of_columns() -> None:
    zone = ZoneInfo("Asia/Kolkata")
    encoder = RowEncoder("jsonl", RowFormat(big_numbers=True, timezone=zone))
    rows: list[dict[str, object]] = [
        {"a": 2**53},
        {"b": datetime(2025, 1, 1, tzinfo=UTC), "c": datetime(2025, 1, 1)},
    ]
    assert encoder.encode(rows) == (
        b'{"a":"9007199254740992"}\n{"b":"2025-01-01T05:30:00+05:30","c":"2025-01-01T00:00:00"}\n'
    )


def test_an_unknown_zone_is_invalid() -> None:
    with pytest.raises(InvalidParams) as caught:
        row_format_for(JobOptions(timezone="Mars/Olympus"), {}, "d", "csv", "d")
    assert caught.value.errors[0].field == "options.timezone"


def test_a_moment_the_zone_would_move_past_9999_keeps_its_offset() -> None:
    late = datetime(9999, 12, 31, 23, tzinfo=UTC)
    fmt = RowFormat(timezone=ZoneInfo("Pacific/Kiritimati"), csv=CsvOptions(header=False))
    assert RowEncoder("csv", fmt).encode([{"at": late}]) == b"9999-12-31T23:00:00+00:00\n"
    json_fmt = RowFormat(timezone=ZoneInfo("Pacific/Kiritimati"))
    assert RowEncoder("jsonl", json_fmt).encode([{"at": late}]) == (
        b'{"at":"9999-12-31T23:00:00+00:00"}\n'
    )
