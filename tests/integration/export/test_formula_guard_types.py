"""The formula guard on each type whose text a caller can start with '=', run in
Postgres: text, a domain over it, char(n), and xml (whose content may be bare text)."""

from __future__ import annotations

import asyncpg

from exportd.export.projection import Shaping, project

SQL = """SELECT '=1+1'::text AS t, '+x'::pg_temp.dtext AS d, '-'::char(3) AS c,
       '=cmd|'' /C calc''!A0'::xml AS x, '@x'::xml AS safe_after,
       '<a>=1</a>'::xml AS element, -5 AS n, '{=1}'::text[] AS arr"""


async def test_the_guard_covers_text_domains_char_and_xml(conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE DOMAIN pg_temp.dtext AS text")
    projected = await project(conn, SQL, Shaping(formula_guard=True), {}, "test")
    row = await conn.fetchrow(projected)
    assert row is not None
    assert dict(row) == {
        "t": "'=1+1",
        "d": "'+x",
        "c": "'-  ",
        "x": "'=cmd|' /C calc'!A0",
        "safe_after": "'@x",
        "element": "<a>=1</a>",
        "n": -5,
        "arr": ["=1"],
    }
