"""Reading one dataset into a byte stream: SQL through COPY, or a Python handler.

SQL datasets are formatted by Postgres, several times faster than decoding
rows into Python and encoding them again: CSV with ``COPY ... (FORMAT csv,
HEADER)``, JSON Lines with ``COPY`` of ``row_to_json`` per row. COPY takes no
bind parameters: a dataset's statement is its definition's text with each
placeholder's typed literal at the placeholder's place (``Dataset.bind``),
and the COPY text around it comes from the named queries. The same functions
build the text for ``exportd check``, which has Postgres parse and plan it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from exportd.database import DATABASE_ERRORS, classify_pg_error
from exportd.definitions.kinds import Dataset
from exportd.definitions.options.model import CsvOptions
from exportd.errors import ErrorKind, ExportError
from exportd.export.csv_dialect import copy_text
from exportd.export.row_encoding import RowEncoder, RowFormat
from exportd.export.streams import ByteSink, CsvRecords
from exportd.handlers import HandlerContext
from exportd.queue.sql import queries

# The marker in the wrapping named queries that the dataset's SQL replaces.
_MARKER = "/* dataset */"
# Rows a handler yields that are encoded (in a thread) at once.
_HANDLER_BATCH = 1000

RowsSeen = Callable[[int], None]
_DEFAULT_CSV = CsvOptions()
# Encodes a batch of a handler's rows (the first batch first), off the event loop.
BatchEncoder = Callable[[Sequence[Mapping[str, Any]]], Awaitable[bytes]]


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
    """The named query ``name`` with its one marker replaced by ``sql``: a split at the
    marker of the template, so nothing in ``sql`` is ever searched."""
    before, after = queries()[name].split(_MARKER)
    return before + sql + after


@dataclass(frozen=True)
class JsonShape:
    """What the JSON wrapping of a dataset depends on: the 1-based positions of its bytea
    columns, and whether any column's type may hold json."""

    bytea: tuple[int, ...] = ()
    holds_json: bool = False


@dataclass(frozen=True)
class Statement:
    """A COPY statement as sent (``copy``) and the query inside it (``query``)."""

    copy: str
    query: str


def json_query(sql: str, shape: JsonShape) -> str:
    """The query writing one JSON text per row of the statement ``sql``."""
    if shape.bytea:
        return wrap("json_rows_bytea", sql)
    return wrap("json_rows_json" if shape.holds_json else "json_rows", sql)


def csv_statement(sql: str, csv: CsvOptions = _DEFAULT_CSV) -> Statement:
    """The COPY statement that writes the rows of ``sql`` as CSV in ``csv``'s dialect
    (by default with a header, as ``COPY ... (FORMAT csv, HEADER true)`` does)."""
    return Statement(copy_text(sql, csv), sql)


def json_copy(sql: str, shape: JsonShape) -> Statement:
    """The COPY statement that writes the rows of ``sql`` as JSON Lines."""
    query = json_query(sql, shape)
    return Statement(wrap("copy_json", query), query)


def repeated_names(names: list[str]) -> list[str]:
    """The names that occur more than once, each once, in order of first occurrence."""
    counts = Counter(names)
    return [name for name in dict.fromkeys(names) if counts[name] > 1]


async def json_shape(conn: asyncpg.Connection, sql: str, what: str) -> JsonShape:
    """Prepare ``sql`` (without running it) and tell how its rows are written as JSON.

    Raises ExportError(QUERY_ERROR) naming ``what`` (the kind and dataset) when two columns
    share a name: a JSON object would carry the key twice and a reader keep one value.
    """
    attributes = (await conn.prepare(sql)).get_attributes()
    repeated = repeated_names([a.name for a in attributes])
    if repeated:
        raise ExportError(
            ErrorKind.QUERY_ERROR,
            f"{what}: the columns {', '.join(repr(n) for n in repeated)} occur more than once; "
            "a JSON record needs distinct names: give each column its own alias (AS ...)",
        )
    bytea = tuple(i for i, a in enumerate(attributes, start=1) if a.type.name == "bytea")
    holds_json = bool(attributes) and bool(
        await conn.fetchval(queries()["types_hold_json"], [a.type.oid for a in attributes])
    )
    return JsonShape(bytea, holds_json)


async def start_session(conn: asyncpg.Connection, timeout_seconds: float, timezone: str) -> None:
    """Pin the export transaction's settings (named query ``export_session``): the
    statement timeout, the time zone and every setting that shapes the output."""
    await conn.execute(queries()["export_session"], str(int(timeout_seconds * 1000)), timezone)


def copy_row_count(status: str) -> int:
    """Rows copied, from a ``COPY n`` command status."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


async def estimate_rows(conn: asyncpg.Connection, sql: str) -> int:
    """The planner's row estimate for a dataset's statement (0 when it has none)."""
    plan = await conn.fetchval(wrap("estimate_rows", sql))
    try:
        return max(0, int(plan[0]["Plan"]["Plan Rows"]))
    except (LookupError, TypeError, ValueError):
        return 0


async def count_rows_upto(conn: asyncpg.Connection, sql: str, most: int) -> int:
    """The rows of the statement ``sql``, counted up to ``most`` (named query
    ``count_rows_upto``): ``min(rows, most)``. Runs the statement once more, reading
    at most ``most`` of its rows."""
    counted = await conn.fetchval(wrap("count_rows_upto", sql), most)
    return int(counted)


async def _copy_out(conn: asyncpg.Connection, statement: str, sink: Callable[[bytes], Any]) -> str:
    # asyncpg's copy_from_query builds the COPY text itself (and, given arguments,
    # rewrites every $n of it); the daemon sends the exact text that `exportd check`
    # parses, so it hands the whole statement to the connection's COPY OUT.
    status: str = await conn._copy_out(statement, sink, None)
    return status


async def json_statement(conn: asyncpg.Connection, sql: str, what: str) -> Statement:
    """The COPY statement for ``sql`` as JSON Lines, with the transaction's settings it
    reads (the bytea columns) in place. Raises ExportError as ``json_shape`` does."""
    shape = await json_shape(conn, sql, what)
    if shape.bytea:
        await conn.execute(queries()["set_bytea_columns"], ",".join(map(str, shape.bytea)))
    return json_copy(sql, shape)


async def copy_csv(
    conn: asyncpg.Connection,
    sql: str,
    out: ByteSink,
    seen: RowsSeen,
    csv: CsvOptions = _DEFAULT_CSV,
) -> int:
    """Write the statement ``sql``'s rows to ``out`` as CSV in ``csv``'s dialect (a
    header by default); returns the rows."""
    records = CsvRecords(header=csv.header)

    async def sink(chunk: bytes) -> None:
        records.feed(chunk)
        await out.write(chunk)
        seen(records.rows)

    return copy_row_count(await _copy_out(conn, csv_statement(sql, csv).copy, sink))


async def copy_jsonl(
    conn: asyncpg.Connection, sql: str, out: ByteSink, seen: RowsSeen, what: str
) -> int:
    """Write the statement ``sql``'s rows to ``out`` as JSON Lines; returns the rows.
    Raises ExportError(QUERY_ERROR) as ``json_shape`` does."""
    statement = await json_statement(conn, sql, what)
    rows = 0

    async def sink(chunk: bytes) -> None:
        nonlocal rows
        rows += chunk.count(b"\n")
        await out.write(chunk)
        seen(rows)

    return copy_row_count(await _copy_out(conn, statement.copy, sink))


async def handler_output(
    dataset: Dataset,
    ctx: HandlerContext,
    encoding: str,
    out: ByteSink,
    seen: RowsSeen,
    fmt: RowFormat | None = None,
    encoder: BatchEncoder | None = None,
) -> int:
    """Run a handler dataset; returns its rows (0 for a bytes dataset). Rows are encoded
    by ``encoder`` when given (an xlsx sheet), else as ``encoding`` (csv or jsonl) and
    ``fmt`` (the job's options) say."""
    assert dataset.handler is not None
    what = f"handler {dataset.handler_ref!r} of kind {ctx.kind!r}"
    try:
        if dataset.output == "bytes":
            async for block in dataset.handler(ctx):
                if not isinstance(block, bytes | bytearray | memoryview):
                    raise _bad_item(what, block, "bytes")
                await out.write(bytes(block))
            return 0
        if encoder is None:
            rows_encoder = RowEncoder(encoding, fmt)

            async def encoder(batch: Sequence[Mapping[str, Any]]) -> bytes:
                return await asyncio.to_thread(rows_encoder.encode, batch)

        return await _handler_rows(dataset, ctx, encoder, out, seen, what)
    except (ExportError, asyncio.CancelledError):
        raise
    except DATABASE_ERRORS as exc:
        raise classify_pg_error(exc, what) from exc
    except Exception as exc:
        raise ExportError(
            ErrorKind.INTERNAL, f"{what} raised {exc.__class__.__name__}: {exc}"
        ) from exc


async def _handler_rows(
    dataset: Dataset,
    ctx: HandlerContext,
    encoder: BatchEncoder,
    out: ByteSink,
    seen: RowsSeen,
    what: str,
) -> int:
    assert dataset.handler is not None
    batch: list[Mapping[str, Any]] = []
    rows = 0

    async def flush() -> None:
        nonlocal rows
        data = await encoder(batch)
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
