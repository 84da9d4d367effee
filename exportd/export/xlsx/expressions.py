"""A dataset's rows as SpreadsheetML, formatted by Postgres through COPY.

Each output column gets a cell expression from a named template in
``sql/queries.sql`` (``xlsx_cell_*``), chosen by the column's type as the prepared
statement reports it; the column enters the text only as a quoted identifier of the
subquery ``t``. A NULL is an empty cell. The row query goes inside copy_json's COPY,
whose quote and delimiter no row holds, so each row arrives as one line.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from exportd.definitions.options.model import LongText
from exportd.export.columns import Column, quote_ident
from exportd.export.sources import RowsSeen, copy_row_count, wrap
from exportd.export.streams import ByteSink
from exportd.queue.sql import queries

_VALUE = "/* value */"
_TEXT = "/* text */"
_CELLS = "/* cells */"
_DATASET = "/* dataset */"
_TEMPLATES = {
    "int2": "xlsx_cell_int",
    "int4": "xlsx_cell_int",
    "int8": "xlsx_cell_numeric",
    "oid": "xlsx_cell_int",
    "numeric": "xlsx_cell_numeric",
    "float4": "xlsx_cell_float",
    "float8": "xlsx_cell_float",
    "bool": "xlsx_cell_bool",
    "date": "xlsx_cell_date",
    "timestamp": "xlsx_cell_timestamp",
    "timestamptz": "xlsx_cell_timestamp",
}


def cell_expression(column: Column, long_text: LongText) -> str:
    """The SQL expression of one column's cell, NULL for a NULL value. Types are known
    by name in pg_catalog only: a user's type of the same name is written as text."""
    ref = "t." + quote_ident(column.name)
    template = _TEMPLATES.get(column.type_name) if column.type_schema == "pg_catalog" else None
    if template is not None:
        return queries()[template].replace(_VALUE, ref)
    text = queries()["xlsx_cell_text" if long_text == "truncate" else "xlsx_cell_text_strict"]
    return text.replace(_TEXT, f"({ref})::text")


def rows_query(sql: str, columns: Sequence[Column], long_text: LongText) -> str:
    """The query writing one SpreadsheetML row (one line of text) per row of ``sql``."""
    cells = " || ".join(f"coalesce(\n{cell_expression(c, long_text)}\n, '<c/>')" for c in columns)
    row = "'<row>' || " + (cells + " || " if cells else "") + "'</row>'"
    # The template is split at its markers, never the dataset's text.
    head, tail = queries()["xlsx_rows"].split(_CELLS)
    before, after = tail.split(_DATASET)
    return head + row + before + sql + after


def copy_statement(sql: str, columns: Sequence[Column], long_text: LongText) -> str:
    """The COPY statement that writes the rows of ``sql`` as sheet rows."""
    return wrap("copy_json", rows_query(sql, columns, long_text))


async def copy_sheet_rows(
    conn: asyncpg.Connection,
    sql: str,
    columns: Sequence[Column],
    long_text: LongText,
    out: ByteSink,
    seen: RowsSeen,
) -> int:
    """Write the rows of ``sql`` to ``out``, a line each; returns the rows."""
    rows = 0

    async def sink(chunk: bytes) -> None:
        nonlocal rows
        rows += chunk.count(b"\n")
        await out.write(chunk)
        seen(rows)

    status: str = await conn._copy_out(copy_statement(sql, columns, long_text), sink, None)
    return copy_row_count(status)
