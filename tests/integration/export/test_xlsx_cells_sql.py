"""Cells Postgres writes (``expressions``) against the same values written in Python
(``cells``): one rule for a dataset and a handler, at the edges of Excel's range."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from exportd.export.columns import choose_columns, statement_columns
from exportd.export.xlsx.cells import cell
from exportd.export.xlsx.expressions import rows_query

CASES: list[tuple[str, Any]] = [
    ("timestamp '9999-12-31 23:59:59.499999'", datetime(9999, 12, 31, 23, 59, 59, 499999)),
    ("timestamp '9999-12-31 23:59:59.500001'", datetime(9999, 12, 31, 23, 59, 59, 500001)),
    ("timestamp '9999-12-31 23:59:59.999995'", datetime(9999, 12, 31, 23, 59, 59, 999995)),
    ("timestamp '1900-03-01'", datetime(1900, 3, 1)),
    ("numeric '1.000000000000000000'", Decimal("1.000000000000000000")),
    ("numeric '9007199254740992'", Decimal(2**53)),
    ("int8 '-9007199254740992'", -(2**53)),
    ("numeric '0.000000000000000000001'", Decimal("1e-21")),
    ("text '</t></is></c><c><f>1+1</f> ]]> &#x0;'", "</t></is></c><c><f>1+1</f> ]]> &#x0;"),
    ("E'\\uFFFE\\uFFFF\\x01\\t\\r\\n'", "\ufffe\uffff\x01\t\r\n"),
]


@pytest.mark.parametrize(("literal", "value"), CASES)
async def test_postgres_writes_the_cell_python_writes(
    conn: asyncpg.Connection, literal: str, value: Any
) -> None:
    await conn.execute("SET TIME ZONE 'UTC'")
    sql = f"SELECT {literal} AS v"
    columns = choose_columns(await statement_columns(conn, sql), None, {}, "test")
    row = await conn.fetchval(rows_query(sql, columns, "truncate"))
    python = cell(value, ZoneInfo("UTC"))
    assert _meaning(row) == _meaning(f"<row>{python}</row>")


def _meaning(row: str) -> list[tuple[dict[str, str], str]]:
    """Each cell's attributes and text (xml:space, which changes no text here, aside)."""
    space = "{http://www.w3.org/XML/1998/namespace}space"
    return [
        ({k: v for k, v in c.attrib.items() if k != space}, "".join(c.itertext()))
        for c in ElementTree.fromstring(row)
    ]
