"""A dataset's rows into a parquet file: its columns decided from the prepared
statement, its rows formatted by Postgres through COPY (``parquet_copy``).

Of the ways to get rows into Arrow that were measured (docs/benchmarks.md, "Parquet:
how rows reach Arrow"), COPY of CSV parsed by Arrow's CSV reader is the
fastest: Postgres formats text in C, Arrow parses it in C++, and no value becomes a
Python object on the way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from exportd.errors import ErrorKind, ExportError
from exportd.export.columns import choose_columns, quote_ident, statement_columns
from exportd.export.parquet.mapping import ColumnType, ParquetColumn, parquet_column
from exportd.export.parquet.writer import ParquetRows
from exportd.export.sources import RowsSeen, repeated_names
from exportd.export.sql_text import fill, snippet, template
from exportd.export.streams import ByteSink


async def parquet_columns(
    conn: asyncpg.Connection, sql: str, labels: Mapping[str, str], what: str
) -> tuple[list[ParquetColumn], list[str]]:
    """The file's columns (named by the kind's ``labels``) and the statement's own column
    names, by preparing ``sql`` (nothing runs). Raises ExportError(QUERY_ERROR) when
    two columns would share a name (a reader keeps one of them) or there is none."""
    chosen = choose_columns(await statement_columns(conn, sql), None, labels, what)
    if not chosen:
        raise ExportError(
            ErrorKind.QUERY_ERROR,
            f"{what}: the query returns no columns, and a parquet file needs at least one",
        )
    repeated = repeated_names([c.label for c in chosen])
    if repeated:
        raise ExportError(
            ErrorKind.QUERY_ERROR,
            f"{what}: the columns {', '.join(repr(n) for n in repeated)} occur more than once; "
            "a parquet file needs distinct names: give each column its own alias (AS ...)",
        )
    rows = await conn.fetch(template("parquet_column_types"), list({c.type_oid for c in chosen}))
    types = {
        r["oid"]: ColumnType(
            r["base_name"], r["base_schema"], r["category"], r["element_name"], r["element_schema"]
        )
        for r in rows
    }
    columns = [
        parquet_column(c.label, types.get(c.type_oid, ColumnType(c.type_name, c.type_schema)))
        for c in chosen
    ]
    return columns, [c.name for c in chosen]


def copy_statement(sql: str, columns: Sequence[ParquetColumn], names: Sequence[str]) -> str:
    """The COPY statement writing ``sql``'s rows as ``parquet_copy`` CSV: each column
    (by its statement name in ``names``) through its column's template."""
    expressions = [
        fill(snippet(column.template), {"column": "t." + quote_ident(name)})
        for column, name in zip(columns, names, strict=True)
    ]
    return fill(
        template("parquet_copy"), {"columns": ",\n       ".join(expressions), "dataset": sql}
    )


async def copy_parquet(
    conn: asyncpg.Connection,
    sql: str,
    target: ParquetRows,
    out: ByteSink,
    seen: RowsSeen,
    labels: Mapping[str, str],
    what: str,
) -> int:
    """Write the rows of the bound statement ``sql`` into ``target`` (through ``out``,
    which ends in it) and close it; returns the rows."""
    columns, names = await parquet_columns(conn, sql, labels, what)
    target.begin(columns, seen)
    # The whole statement goes to the connection's COPY OUT (see sources._copy_out).
    await conn._copy_out(copy_statement(sql, columns, names), out.write, None)
    return await target.close()
