"""Typed values as SQL literals: what each becomes, and the values no literal may carry."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from exportd.definitions.literals import UnsafeValue, literal, quote
from exportd.definitions.params.values import BIGINT_MAX


@pytest.mark.parametrize(
    ("value", "pg_type", "expected"),
    [
        ("acme", "text", "E'acme'"),
        ("it's", "text", "E'it''s'"),
        ("a\\'b", "text", "E'a\\\\''b'"),
        ("$1 :owner -- /*", "text", "E'$1 :owner -- /*'"),
        (None, "text", "NULL"),
        (True, "boolean", "E'true'"),
        (False, "boolean", "E'false'"),
        (BIGINT_MAX, "bigint", f"E'{BIGINT_MAX}'"),
        (Decimal("1E+3"), "numeric", "E'1000'"),
        (Decimal("-0.000001"), "numeric", "E'-0.000001'"),
        (Decimal("NaN"), "numeric", "E'NaN'"),
        (Decimal("-Infinity"), "numeric", "E'-Infinity'"),
        (date(1, 1, 1), "date", "E'0001-01-01'"),
        (
            datetime(2025, 1, 31, 9, 30, tzinfo=timezone(timedelta(hours=2))),
            "timestamptz",
            "E'2025-01-31T07:30:00+00:00'",
        ),
        ([], "text[]", "ARRAY[]"),
        (["a,b", "NULL", None], "text[]", "ARRAY[E'a,b'::text,E'NULL'::text,NULL::text]"),
    ],
)
def test_literal(value: object, pg_type: str, expected: str) -> None:
    assert literal(value, pg_type) == expected


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"])
def test_text_no_literal_can_carry_is_refused(text: str) -> None:
    with pytest.raises(UnsafeValue):
        quote(text)
    with pytest.raises(UnsafeValue):
        literal([text], "text[]")


def test_a_wall_clock_time_is_refused() -> None:
    with pytest.raises(UnsafeValue, match="time zone"):
        literal(datetime(2025, 1, 1), "timestamptz")
    with pytest.raises(TypeError):
        literal("abc", "text[]")
