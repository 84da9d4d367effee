"""No param value can change a statement: generated definitions full of '$', ':', quotes,
dollar quotes and comments, bound with generated values, run on Postgres (as a query and
through the CSV COPY the daemon sends) and give back every value and every literal and
alias exactly as written."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportd.definitions.placeholders import compile_named, inline
from exportd.export.sources import _copy_out, csv_statement, start_session

FRAGMENTS = ["$", "$1", "$2", "$$", "$t$", ":", "::", ":s", ":p0", "'", "''", '"', "\\", "E'\\''"]
FRAGMENTS += ["--", "/*", "*/", "\n", "\r", ";", "UNION ALL SELECT 1", ",", "é", "€"]
TEXT = st.lists(
    st.sampled_from(FRAGMENTS) | st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF)),
    max_size=6,
).map("".join)


@dataclass(frozen=True)
class Column:
    sql: str  # the expression as the definition writes it
    value: str  # what it must give
    param: str | None = None  # the placeholder it is, if it is one


def _standard(text: str) -> Column:
    return Column("'" + text.replace("'", "''") + "'", text)


def _escape(text: str) -> Column:
    return Column("E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'", text)


def _dollar(tag: str, text: str) -> Column:
    quote = f"${tag}$"
    return Column(f"{quote}{text}{quote}", text)


def _fits_dollar(tag: str, text: str) -> bool:
    quote = f"${tag}$"
    return (text + quote).find(quote) == len(text)


LITERAL = st.one_of(
    TEXT.map(_standard),
    TEXT.map(_escape),
    st.tuples(st.sampled_from(["", "t", "q2", "é"]), TEXT)
    .filter(lambda pair: _fits_dollar(*pair))
    .map(lambda pair: _dollar(*pair)),
)
COMMENT = st.one_of(
    st.just(""),
    TEXT.filter(lambda t: "/*" not in t and "*/" not in t and not t.endswith("/")).map(
        lambda t: f" /* {t} */"
    ),
    TEXT.map(lambda t: " -- " + t.replace("\n", " ").replace("\r", " ") + "\n"),
)
ALIAS = st.text(st.sampled_from("ab$2:'\" -*/é"), min_size=1, max_size=8)


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@st.composite
def statements(draw: st.DrawFn) -> tuple[str, list[Column], list[str], dict[str, str]]:
    count = draw(st.integers(1, 5))
    columns: list[Column] = []
    values: dict[str, str] = {}
    for i in range(count):
        if draw(st.booleans()):
            name = f"p{i}"
            values[name] = draw(TEXT)
            columns.append(Column(f":{name}", values[name], name))
        else:
            columns.append(draw(LITERAL))
    aliases = draw(st.lists(ALIAS, min_size=count, max_size=count, unique=True))
    parts = [
        c.sql + "::text AS " + _identifier(a) + draw(COMMENT)
        for c, a in zip(columns, aliases, strict=True)
    ]
    text = "SELECT " + ", ".join(parts) + draw(COMMENT.map(lambda c: c.rstrip("\n")))
    return text, columns, aliases, values


async def _run(url: str, sql: str) -> tuple[asyncpg.Record, bytes]:
    conn = await asyncpg.connect(url)
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    try:
        async with conn.transaction(readonly=True):
            await start_session(conn, 10, "UTC")
            row = await conn.fetchrow(sql)
            await _copy_out(conn, csv_statement(sql).copy, sink)
    finally:
        await conn.close()
    return row, b"".join(chunks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=statements())
def test_no_value_changes_the_statement(
    admin_url: str, case: tuple[str, list[Column], list[str], dict[str, str]]
) -> None:
    text, columns, aliases, values = case
    compiled = compile_named(text, dict.fromkeys(values, "text"))
    assert set(compiled.names) == set(values)
    sql = inline(compiled, values)
    row, copied = asyncio.run(_run(admin_url, sql))
    expected = [c.value for c in columns]
    assert list(row.keys()) == aliases
    assert list(row.values()) == expected
    header, *records = list(csv.reader(io.StringIO(copied.decode(), newline="")))
    assert header == aliases
    assert records == [expected]
