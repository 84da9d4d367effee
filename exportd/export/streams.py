"""Byte streams between a dataset and the upload: gzip, zstd, a JSON array.

Each stream takes bytes with ``await write(data)`` and passes what it makes to
the next ``ByteSink`` (in the end, the upload), so back-pressure runs from S3
to Postgres and memory stays bounded. CPU work (deflate, hashing big blocks)
runs in a thread on blocks of ``BLOCK`` bytes: the event loop keeps serving
heartbeats while a large export compresses. (The zip bundle is ``zip_stream``.)

A write may be one very large row (COPY hands over a row whole): no stream
copies a write whole. Each takes it a block at a time through a memoryview,
so what a stream adds to the caller's buffer is at most a block or two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

# ISA-L's deflate writes standard gzip about three times as fast as zlib at
# level 1 (and a little smaller), and releases the GIL while it works.
import zstandard
from isal import isal_zlib

# Blocks handed to a thread at once: big enough that the hop costs nothing,
# small enough to bound the memory each stream holds.
BLOCK = 1024 * 1024
# `gzip -1`: exports are written once and read once; speed wins over ratio.
# (ISA-L's levels run 0-3, zlib's 1-9; 1 is a fast level in both.)
COMPRESS_LEVEL = 1
# Zstandard's level 1: as fast as ISA-L's gzip at level 1 (the same CPU time) and
# about a fifth smaller; levels 2 and 3 are slower and, on CSV, no smaller. No worker
# threads of zstd's own: where a core is free they gain little, where the cores are
# busy (Postgres, other jobs) they cost CPU, and they hold 5 to 14 MiB more per job
# (docs/formats.md, "Compression, measured"). A frame ends with its checksum, as the
# zstd tool writes it.
ZSTD_LEVEL = 1
ZSTD_THREADS = 0


class ByteSink(Protocol):
    async def write(self, data: bytes) -> None: ...


def blocks(data: bytes) -> list[memoryview]:
    """``data`` as views of at most ``BLOCK`` bytes each, in order, copying nothing."""
    view = memoryview(data).cast("B")
    return [view[i : i + BLOCK] for i in range(0, len(view), BLOCK)]


async def fill_blocks(
    pending: bytearray, data: bytes, flush: Callable[[], Awaitable[None]]
) -> None:
    """Append ``data`` to ``pending``, calling ``flush`` (which empties it) each
    time it reaches ``BLOCK`` bytes: ``pending`` never grows past a block,
    whatever the size of ``data``."""
    for view in blocks(data):
        room = BLOCK - len(pending)
        pending += view[:room]
        if len(pending) >= BLOCK:
            await flush()
        pending += view[room:]


class Compressor(Protocol):
    """What both gzip's and zstd's streaming compressors offer."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class CompressedStream:
    """Bytes through a streaming compressor, a block at a time in a thread: the
    compressors release the GIL, and the event loop runs on meanwhile."""

    def __init__(self, out: ByteSink, compressor: Compressor) -> None:
        self._out = out
        self._compressor = compressor
        self._pending = bytearray()

    async def write(self, data: bytes) -> None:
        await fill_blocks(self._pending, data, self._next_block)

    async def close(self) -> None:
        await self._compress(final=True)

    async def _next_block(self) -> None:
        await self._compress(final=False)

    async def _compress(self, *, final: bool) -> None:
        block = bytes(self._pending)
        self._pending.clear()
        compressed = await asyncio.to_thread(self._run, block, final)
        if compressed:
            await self._out.write(compressed)

    def _run(self, block: bytes, final: bool) -> bytes:
        data = self._compressor.compress(block)
        return data + self._compressor.flush() if final else data


class GzipStream(CompressedStream):
    """A gzip file (RFC 1952), compressed off the event loop by ISA-L."""

    def __init__(self, out: ByteSink, level: int = COMPRESS_LEVEL) -> None:
        super().__init__(
            out, isal_zlib.compressobj(level, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)
        )


class ZstdStream(CompressedStream):
    """A Zstandard frame (RFC 8878) with its content checksum, compressed off the
    event loop. ``threads``: zstd's own workers (0, the default: it compresses in the
    thread the stream hands each block to, as gzip does)."""

    def __init__(self, out: ByteSink, level: int = ZSTD_LEVEL, threads: int = ZSTD_THREADS) -> None:
        compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
        super().__init__(out, compressor.compressobj())


class JsonArrayStream:
    """JSON Lines in, one JSON array out: ``[`` + records joined by ``,\\n`` + ``]``.

    Every newline of JSON Lines ends a record (JSON text escapes its own), so
    each but the last becomes ``,\\n``; the last newline is held back until
    more data shows it was not the last.
    """

    def __init__(self, out: ByteSink) -> None:
        self._out = out
        self._started = False
        self._held = False  # a record's newline, not yet known to be the last

    async def write(self, data: bytes) -> None:
        # A block at a time, so that a large record is never copied whole.
        for view in blocks(data):
            await self._write_block(bytes(view))

    async def _write_block(self, data: bytes) -> None:
        if self._held:
            data = b"\n" + data
        self._held = data.endswith(b"\n")
        if self._held:
            data = data[:-1]
        prefix = b"" if self._started else b"[\n"
        self._started = True
        await self._out.write(prefix + data.replace(b"\n", b",\n"))

    async def close(self) -> None:
        await self._out.write(b"\n]\n" if self._started else b"[]\n")


# Every byte but the double quote and the newline, for bytes.translate to delete.
_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in b'"\n')


class CsvRecords:
    """Counts the records of Postgres CSV output as it streams past.

    A newline ends a record only outside double quotes, and Postgres writes a
    quote inside a quoted field as two, so quote parity tells them apart
    exactly: text with embedded newlines is counted right.
    """

    def __init__(self, header: bool) -> None:
        self._header = header
        self._quoted = False
        self._newlines = 0

    def feed(self, chunk: bytes) -> None:
        if len(chunk) <= BLOCK:
            self._feed(chunk)
            return
        # Splitting a large row would copy it whole, twice; a block at a time
        # copies at most a block (the quote state carries across blocks).
        for view in blocks(chunk):
            self._feed(bytes(view))

    def _feed(self, chunk: bytes) -> None:
        if b'"' in chunk:
            # Only quotes and newlines decide the count: keep those alone (one pass
            # in C), then drop adjacent quote pairs, which flip the state twice with
            # no newline between. What is left is usually newlines alone; splitting
            # the whole chunk at every quote costs several times as much.
            chunk = chunk.translate(None, _NOT_QUOTE_OR_NEWLINE).replace(b'""', b"")
        if b'"' not in chunk:
            if not self._quoted:
                self._newlines += chunk.count(b"\n")
            return
        pieces = chunk.split(b'"')
        # Pieces alternate outside and inside quotes, starting where the last chunk ended.
        outside = pieces[1::2] if self._quoted else pieces[0::2]
        self._newlines += b"".join(outside).count(b"\n")
        if len(pieces) % 2 == 0:  # an odd number of quotes flips the state
            self._quoted = not self._quoted

    @property
    def rows(self) -> int:
        return max(0, self._newlines - self._header)


@dataclass(frozen=True)
class MemberStats:
    name: str
    bytes: int
    sha256: str
