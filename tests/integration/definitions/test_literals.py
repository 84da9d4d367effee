"""Postgres reads back exactly the value each SQL literal stands for, under hostile session
settings."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportd.definitions.literals import literal
from exportd.definitions.params.values import BIGINT_MAX, BIGINT_MIN

# Settings a database or role could carry that change how Postgres reads string
# literals, arrays and dates; the literals must not depend on any of them.
HOSTILE = (
    "SET standard_conforming_strings = off; SET backslash_quote = off;"
    " SET escape_string_warning = off; SET array_nulls = off;"
    " SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Pacific/Chatham';"
    " SET IntervalStyle = 'postgres_verbose'"
)


# Any text Postgres can hold, built from fragments that mean something to a lexer, an
# array reader or a string reader as well as from any character.
TEXT = st.lists(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=3)
    | st.sampled_from(["'", "\\", "$", "$1", "$$", '"', "{", "}", ",", "NULL", "\n", "\r"]),
    max_size=6,
).map("".join)


ZONES = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-14 * 60, 14 * 60)
)


def _in_range(value: datetime) -> bool:
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "text": TEXT,
    "bigint": st.integers(BIGINT_MIN, BIGINT_MAX),
    "numeric": st.decimals(allow_nan=False, allow_infinity=True, places=None).filter(
        lambda d: not d.is_finite() or abs(d.adjusted()) < 1000
    )
    | st.just(Decimal("NaN")),
    "boolean": st.booleans(),
    "date": st.dates(),
    "timestamptz": st.datetimes(timezones=ZONES).filter(_in_range),
}


TYPED = st.one_of(
    *(st.tuples(st.just(t), s) for t, s in SCALARS.items()),
    *(
        st.tuples(st.just(t + "[]"), st.lists(s | st.none(), max_size=4))
        for t, s in SCALARS.items()
    ),
)


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same, got, want))
    if isinstance(want, Decimal) and want.is_nan():
        return isinstance(got, Decimal) and got.is_nan()
    return bool(got == want)


async def _read_back(url: str, cases: list[tuple[str, Any]]) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(HOSTILE)
        select = ", ".join(f"({literal(v, t)}::{t})" for t, v in cases)
        row = await conn.fetchrow(f"SELECT {select}")  # the literals under test, nothing else
        return list(row)
    finally:
        await conn.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=st.lists(TYPED, min_size=1, max_size=8))
def test_postgres_reads_back_each_value_exactly(admin_url: str, cases: list[Any]) -> None:
    got = asyncio.run(_read_back(admin_url, cases))
    for (pg_type, want), value in zip(cases, got, strict=True):
        assert _same(value, want), (pg_type, want, value)
