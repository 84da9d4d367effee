"""Reading one dataset into a byte stream: SQL through COPY, or a Python handler.

SQL datasets are formatted by Postgres, several times faster than decoding
rows into Python and encoding them again: CSV with ``COPY ... (FORMAT csv,
HEADER)``, JSON Lines with ``COPY`` of ``row_to_json`` per row. COPY takes no
bind parameters: asyncpg writes the (validated, typed) values as quoted
literals, the one place they meet SQL text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg

from exportd.db import classify_pg_error
from exportd.definitions import Dataset
from exportd.errors import ErrorKind, ExportError
from exportd.handlers import HandlerContext
from exportd.rowcodec import encode_csv, encode_jsonl
from exportd.sqlfiles import queries
from exportd.streams import ByteSink, CsvRecords

# The marker in the wrapping named queries that the dataset's SQL replaces.
_MARKER = "/* dataset */"
# JSON text escapes control characters, so these two never occur in it: with
# them as CSV quote and delimiter, COPY writes each JSON text as it is, one
# per line.
_JSON_COPY_OPTIONS: dict[str, Any] = {"format": "csv", "quote": "\x01", "delimiter": "\x02"}
# Rows a handler yields that are encoded (in a thread) at once.
_HANDLER_BATCH = 1000

RowsSeen = Callable[[int], None]


class SinkGuard:
    """Stops a COPY whose sink failed by closing its connection, and remembers why.

    When a COPY sink raises (the export is too large, the upload failed, the
    job was cancelled), asyncpg asks the server to cancel the statement and
    the connection's next command waits for that cancellation to be
    acknowledged. If the server had already finished the COPY, nothing is
    left to cancel, no acknowledgement ever comes, and the ROLLBACK hangs
    for good. Closing the connection instead cannot hang: the server ends
    the statement when its client goes, and the pool opens a new connection.
    Closing it makes the transaction's exit fail as well; ``failure`` keeps
    the error that matters.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.failure: BaseException | None = None

    def wrap(self, out: ByteSink) -> ByteSink:
        return _GuardedSink(self, out)

    def abandon(self, exc: BaseException) -> None:
        """Close the connection because of ``exc``, which the job then ends with. Also
        for a cancellation that arrives while asyncpg waits for COPY data: the same
        race applies when the server has just finished."""
        if self.failure is None:
            self.failure = exc
        self._conn.terminate()

    def raise_failure(self) -> None:
        """Raise the sink's failure, if there was one."""
        if self.failure is not None:
            raise self.failure


class _GuardedSink:
    def __init__(self, guard: SinkGuard, out: ByteSink) -> None:
        self._guard = guard
        self._out = out

    async def write(self, data: bytes) -> None:
        try:
            await self._out.write(data)
        except BaseException as exc:
            self._guard.abandon(exc)
            raise


def wrap(name: str, sql: str) -> str:
    """The named query ``name`` around a dataset's compiled SQL."""
    return queries()[name].replace(_MARKER, sql)


def copy_row_count(status: str) -> int:
    """Rows copied, from a ``COPY n`` command status."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


async def estimate_rows(conn: asyncpg.Connection, sql: str, args: list[Any]) -> int:
    """The planner's row estimate for a dataset (0 when it has none)."""
    plan = await conn.fetchval(wrap("estimate_rows", sql), *args)
    try:
        return max(0, int(plan[0]["Plan"]["Plan Rows"]))
    except (LookupError, TypeError, ValueError):
        return 0


async def copy_csv(
    conn: asyncpg.Connection, sql: str, args: list[Any], out: ByteSink, seen: RowsSeen
) -> int:
    records = CsvRecords(header=True)

    async def sink(chunk: bytes) -> None:
        records.feed(chunk)
        await out.write(chunk)
        seen(records.rows)

    status = await conn.copy_from_query(sql, *args, output=sink, format="csv", header=True)
    return copy_row_count(status)


async def copy_jsonl(
    conn: asyncpg.Connection, sql: str, args: list[Any], out: ByteSink, seen: RowsSeen
) -> int:
    statement = await conn.prepare(sql)
    binary = [
        str(i) for i, a in enumerate(statement.get_attributes(), start=1) if a.type.name == "bytea"
    ]
    if binary:
        await conn.execute(queries()["set_bytea_columns"], ",".join(binary))
    rows = 0

    async def sink(chunk: bytes) -> None:
        nonlocal rows
        rows += chunk.count(b"\n")
        await out.write(chunk)
        seen(rows)

    wrapped = wrap("json_rows_bytea" if binary else "json_rows", sql)
    status = await conn.copy_from_query(wrapped, *args, output=sink, **_JSON_COPY_OPTIONS)
    return copy_row_count(status)


async def handler_output(
    dataset: Dataset, ctx: HandlerContext, encoding: str, out: ByteSink, seen: RowsSeen
) -> int:
    """Run a handler dataset; returns its rows (0 for a bytes dataset)."""
    assert dataset.handler is not None
    what = f"handler {dataset.handler_ref!r} of kind {ctx.kind!r}"
    try:
        if dataset.output == "bytes":
            async for block in dataset.handler(ctx):
                if not isinstance(block, bytes | bytearray | memoryview):
                    raise _bad_item(what, block, "bytes")
                await out.write(bytes(block))
            return 0
        return await _handler_rows(dataset, ctx, encoding, out, seen, what)
    except (ExportError, asyncio.CancelledError):
        raise
    except (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
    ) as exc:
        raise classify_pg_error(exc, what) from exc
    except Exception as exc:
        raise ExportError(
            ErrorKind.INTERNAL, f"{what} raised {exc.__class__.__name__}: {exc}"
        ) from exc


async def _handler_rows(
    dataset: Dataset,
    ctx: HandlerContext,
    encoding: str,
    out: ByteSink,
    seen: RowsSeen,
    what: str,
) -> int:
    assert dataset.handler is not None
    columns: Any = None
    batch: list[Mapping[str, Any]] = []
    rows = 0

    async def flush() -> None:
        nonlocal columns, rows
        if encoding == "csv":
            data, columns = await asyncio.to_thread(encode_csv, batch, columns)
        else:
            data = await asyncio.to_thread(encode_jsonl, batch)
        rows += len(batch)
        batch.clear()
        await out.write(data)
        seen(rows)

    async for row in dataset.handler(ctx):
        if not isinstance(row, Mapping):
            raise _bad_item(what, row, "a mapping of column to value")
        batch.append(row)
        if len(batch) >= _HANDLER_BATCH:
            await flush()
    if batch:
        await flush()
    return rows


def _bad_item(what: str, item: object, expected: str) -> ExportError:
    return ExportError(
        ErrorKind.QUERY_ERROR,
        f"{what} yielded a {type(item).__name__} where {expected} was expected; "
        "check its output setting in the definition",
    )
