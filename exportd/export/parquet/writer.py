"""A dataset's CSV rows (``parquet_copy``) into a parquet file, written as it comes.

``ParquetRows`` is the ``ByteSink`` COPY writes into. It keeps whole rows until they
reach ``GROUP_BYTES`` of text, then hands them to a thread that parses them
(``arrow.read_block``) and writes them as row groups of at most ``group_rows`` rows;
the bytes the parquet writer produced go into ``out`` (the upload, or a zip member)
at once. One block is encoded while the next arrives, never more: memory is about
two blocks of text and their Arrow columns, whatever the export's size. A row over
``GROUP_BYTES`` (up to the row limit, ``EXPORTD_MAX_ROW_BYTES``) is a block of its
own: about five times the row while it is encoded (docs/formats.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from exportd.errors import ErrorKind, ExportError
from exportd.export.parquet import arrow
from exportd.export.parquet.mapping import ParquetColumn
from exportd.export.streams import ByteSink

# Text of whole rows parsed at once: bounds the memory of a block (and of its
# columns, about as large again). 4 MiB kept a 2,000,000-row export under 250 MB of
# peak RSS, against 340 MB with 16 MiB blocks (docs/benchmarks.md).
GROUP_BYTES = 4 * 1024 * 1024
# Rows of a row group at most, unless a job's split_rows asks for fewer. A block
# of text usually ends a group first (about 40,000 rows of 100 bytes; DuckDB writes
# 122,880): this bounds the groups of very narrow rows.
GROUP_ROWS = 1024 * 1024
_T = TypeVar("_T")
# Whole CSV rows handed to the encoding thread.
Block = bytes | bytearray | memoryview
_QUOTE = b'"'
_NEWLINE = b"\n"


class _Collected:
    """The file-like object the parquet writer writes into: it keeps what was written
    until ``take`` hands it on."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        piece = bytes(data)
        self._pieces.append(piece)
        self._position += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self._pieces = b"".join(self._pieces), []
        return data


def last_row_end(data: bytes | bytearray) -> int:
    """The offset just after the last whole CSV row of ``data`` (which starts at a row's
    start), or 0 when it holds none. A newline ends a row when an even number of quotes
    comes before it: Postgres quotes a field holding a newline and doubles a quote."""
    at = data.rfind(_NEWLINE)
    while at >= 0:
        if data.count(_QUOTE, 0, at) % 2 == 0:
            return at + 1
        at = data.rfind(_NEWLINE, 0, at)
    return 0


class ParquetRows:
    """A ``ByteSink`` of CSV rows in blocks of any size, after ``begin(columns)``;
    ``close()`` writes the rest and the file's footer and returns the rows. ``what``
    names the dataset in errors; after a failure, ``discard()`` stops the block being
    encoded."""

    def __init__(
        self,
        out: ByteSink,
        zone: str,
        compression: str,
        what: str,
        group_rows: int = GROUP_ROWS,
        group_bytes: int = GROUP_BYTES,
    ) -> None:
        self._out = out
        self._zone = zone
        self._compression = compression
        self._what = what
        self._seen: Callable[[int], None] = lambda rows: None
        self._group_rows = group_rows
        self._group_bytes = group_bytes
        self._file = _Collected()
        self._columns: list[ParquetColumn] = []
        self._schema = pa.schema([])
        self._writer: pq.ParquetWriter | None = None
        self._pending = bytearray()
        # One thread of its own: the file's blocks are encoded in order, and Arrow's
        # allocator keeps a heap per thread, which a shared pool would multiply.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
        self._encoding: asyncio.Task[None] | None = None
        self.rows = 0

    def begin(self, columns: Sequence[ParquetColumn], seen: Callable[[int], None]) -> None:
        """Start the file with the schema of ``columns``; ``seen(rows)`` after each group."""
        self._columns = list(columns)
        self._schema = arrow.schema(columns, self._zone)
        self._seen = seen
        self._writer = pq.ParquetWriter(
            self._file,
            self._schema,
            compression=self._compression,
            store_schema=True,
            write_statistics=arrow.statistics_columns(columns),
        )

    async def write(self, data: bytes) -> None:
        # A write of a block or more with nothing before it (a large row: COPY hands
        # over whole rows) becomes a block as it is, without a copy of it.
        buffered: bytes | bytearray = data
        if self._pending:
            self._pending += data
            buffered = self._pending
        cut = last_row_end(buffered) if len(buffered) >= self._group_bytes else 0
        if cut == 0:
            self._pending = buffered if isinstance(buffered, bytearray) else bytearray(data)
            return
        block: Block
        if isinstance(buffered, bytes):
            block, self._pending = memoryview(buffered)[:cut], bytearray(buffered[cut:])
        else:
            # The rows go as they are; what follows them starts the next block.
            block, self._pending = buffered, bytearray(buffered[cut:])
            del block[cut:]
        await self._wait()
        self._encoding = asyncio.create_task(self._encode(block))

    async def close(self) -> int:
        """Write what is left, then the footer; the rows written."""
        await self._wait()
        if self._pending:
            block, self._pending = self._pending, bytearray()
            await self._encode(block)
        footer = await self._in_thread(self._finish)
        await self._out.write(footer)
        self._thread.shutdown(wait=False)
        return self.rows

    def discard(self) -> None:
        if self._encoding is not None:
            self._encoding.cancel()
            self._encoding = None
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def _in_thread(self, work: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work)

    async def _wait(self) -> None:
        if self._encoding is not None:
            task, self._encoding = self._encoding, None
            await task

    async def _encode(self, block: Block) -> None:
        rows, data = await self._in_thread(lambda: self._group(block))
        self.rows += rows
        if data:
            await self._out.write(data)
        self._seen(self.rows)

    def _group(self, block: Block) -> tuple[int, bytes]:
        try:
            table = arrow.read_block(block, self._columns, self._schema)
        except arrow.Unrepresentable as exc:
            raise ExportError(
                ErrorKind.QUERY_ERROR,
                f"{self._what}: column {exc.column!r} holds {exc.value[:100]!r}, which a "
                f"parquet {exc.type_text} column cannot hold; cast it to text in the query "
                "(or filter such rows out)",
            ) from exc
        except (pa.ArrowInvalid, ValueError) as exc:
            raise ExportError(
                ErrorKind.QUERY_ERROR, f"{self._what}: a value could not be written: {exc}"
            ) from exc
        assert self._writer is not None, "begin() comes first"
        self._writer.write_table(table, row_group_size=self._group_rows)
        return table.num_rows, self._file.take()

    def _finish(self) -> bytes:
        assert self._writer is not None, "begin() comes first"
        self._writer.close()
        footer = self._file.take()
        # Arrow's allocator keeps freed blocks for reuse, and a daemon's next job may
        # write no parquet: they go back now. A process at 131 MB that wrote a file
        # of two 19 MB rows stayed at 220 MB without this, 159 MB with it.
        pa.default_memory_pool().release_unused()
        return footer
