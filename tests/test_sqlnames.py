"""Compiling :name placeholders: what must change, what must not, and a real Postgres run."""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg
import pytest

from exportd.sqlnames import CompiledQuery, UnknownNames, bind, compile_named

TYPES = {"owner": "text", "a": "date", "ids": "bigint[]", "n": "bigint"}


def sql(text: str) -> str:
    return compile_named(text, TYPES).sql


def test_placeholders_become_cast_positions() -> None:
    compiled = compile_named("SELECT * FROM t WHERE o = :owner AND d >= :a", TYPES)
    assert compiled == CompiledQuery(
        "SELECT * FROM t WHERE o = ($1::text) AND d >= ($2::date)", ("owner", "a")
    )


def test_a_repeated_name_keeps_its_number() -> None:
    compiled = compile_named(":owner, :a, :owner,:a", TYPES)
    assert compiled.sql == "($1::text), ($2::date), ($1::text),($2::date)"
    assert compiled.names == ("owner", "a")


def test_placeholders_in_operand_positions() -> None:
    assert sql("x=:n") == "x=($1::bigint)"
    assert sql("ANY(:ids)") == "ANY(($1::bigint[]))"
    assert sql("BETWEEN :a AND :a") == "BETWEEN ($1::date) AND ($1::date)"
    assert sql("arr[:n]") == "arr[($1::bigint)]"
    # The parentheses keep a subscript off the cast ('::bigint[][1]' would be a type).
    assert sql(":ids[1]") == "($1::bigint[])[1]"
    assert sql("FETCH FIRST :n ROWS ONLY") == "FETCH FIRST ($1::bigint) ROWS ONLY"


@pytest.mark.parametrize(
    "untouched",
    [
        "SELECT x::date, y::text[]",
        "SELECT f(a := 1)",
        "SELECT ':a', 'it''s :a', ''",
        r"SELECT E'\':a', e'\\', E'it''s :a'",
        'SELECT "weird :a", "say ""hi"":a"',
        "SELECT $$ :a $$, $fn$ :a $$ $ids $fn$",
        "SELECT 1 -- :a and 'unterminated\n, 2",
        "SELECT /* :a /* nested :a */ still :a */ 1",
        "SELECT a[1:2], a[lo:hi], a[f(x):n], a[1:], a[:2]",
        "SELECT foo$bar, x:a",
        "SELECT U&'\\0041 :a', B'101', X'1F'",
    ],
)
def test_what_must_not_be_touched(untouched: str) -> None:
    assert compile_named(untouched, TYPES) == CompiledQuery(untouched.rstrip(), ())


def test_only_the_code_around_literals_is_compiled() -> None:
    text = "SELECT ':a' || :a || $$:a$$ /* :a */ || \":a\" -- :a\n, :n"
    expected = "SELECT ':a' || ($1::date) || $$:a$$ /* :a */ || \":a\" -- :a\n, ($2::bigint)"
    assert sql(text) == expected


def test_unknown_names_are_all_reported() -> None:
    with pytest.raises(UnknownNames) as caught:
        compile_named("SELECT :start_dat, :a, :Owner, :start_dat", TYPES)
    assert caught.value.unknown == ("start_dat", "Owner")
    assert "start_dat" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_positional_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"line 2: positional parameter \$1"):
        compile_named("SELECT :a\nWHERE x = $1", TYPES)
    # In a literal or a comment a $1 is just text.
    assert sql("SELECT '$1' -- $2\n") == "SELECT '$1' -- $2\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("SELECT 'open", "unterminated string"),
        (r"SELECT E'open\'", "unterminated E'' string"),
        ('SELECT "open', "unterminated quoted identifier"),
        ("SELECT $x$ open $y$", r"unterminated \$x\$ string"),
        ("SELECT /* /* */", "unterminated /\\* comment"),
        ("SELECT 1; SELECT 2", "single statement"),
        ("-- nothing here\n/* nor here */", "empty"),
    ],
)
def test_malformed_sql(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        compile_named(text, TYPES)


def test_the_result_can_be_wrapped_in_copy() -> None:
    # A trailing semicolon or line comment would break COPY (...) TO STDOUT.
    assert sql("SELECT 1;\n") == "SELECT 1"
    assert sql("SELECT 1; -- done") == "SELECT 1 -- done\n"
    assert sql("SELECT 1 -- done") == "SELECT 1 -- done\n"


def test_bind_orders_the_values() -> None:
    compiled = compile_named("SELECT :n, :owner, :n", TYPES)
    assert bind(compiled, {"owner": "acme", "n": 7, "a": None}) == [7, "acme"]
    with pytest.raises(ValueError, match=":n"):
        bind(compiled, {"owner": "acme"})


DSN = "postgresql://postgres@127.0.0.1:5432/test"
INJECTION = "x'); DROP TABLE t; --"


async def test_compiled_queries_run_on_postgres() -> None:
    try:
        conn = await asyncpg.connect(DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        pytest.skip(f"no Postgres at {DSN}: {error}")
    schema = f"sqlnames_{uuid.uuid4().hex[:12]}"
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(
            f"CREATE TABLE {schema}.t (id bigint, owner text, note text, at timestamptz)"
        )
        await conn.execute(
            f"INSERT INTO {schema}.t VALUES "
            "(1, 'acme', 'a: b', '2025-01-31 23:30+00'), (2, 'acme', 'x', '2025-02-01 00:30+00'),"
            "(3, 'other', 'y', '2025-01-31 12:00+00')"
        )
        await conn.execute("SET TIME ZONE 'UTC'")
        compiled = compile_named(
            f"""
            SELECT id, note, :note AS echoed, ':note' AS literal
            FROM {schema}.t  -- :owner in a comment
            WHERE owner = :owner
              AND at < :day  -- a date compared with timestamptz, thanks to the cast
              AND id = ANY(:ids)
            ORDER BY id;
            """,
            {"owner": "text", "note": "text", "day": "date", "ids": "bigint[]"},
        )
        values = {"owner": "acme", "note": INJECTION, "day": date(2025, 2, 1), "ids": [1, 2, 3]}
        args = bind(compiled, values)

        rows = await conn.fetch(compiled.sql, *args)
        assert [tuple(r) for r in rows] == [(1, "a: b", INJECTION, ":note")]

        chunks: list[bytes] = []

        async def collect(chunk: bytes) -> None:
            chunks.append(chunk)

        await conn.copy_from_query(compiled.sql, *args, output=collect, format="csv")
        assert b"".join(chunks).decode() == f"1,a: b,{INJECTION},:note\n"

        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.t") == 3
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
