"""Byte streams between a dataset and the upload: gzip, a JSON array, a zip bundle.

Each stream takes bytes with ``await write(data)`` and passes what it makes to
the next ``ByteSink`` (in the end, the upload), so back-pressure runs from S3
to Postgres and memory stays bounded. CPU work (deflate, hashing big blocks)
runs in a thread on blocks of ``BLOCK`` bytes: the event loop keeps serving
heartbeats while a large export compresses.

A write may be one very large row (COPY hands over a row whole): no stream
copies a write whole. Each takes it a block at a time through a memoryview,
so what a stream adds to the caller's buffer is at most a block or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

# ISA-L's deflate writes standard gzip about three times as fast as zlib at
# level 1 (and a little smaller), and releases the GIL while it works.
from isal import isal_zlib

# Blocks handed to a thread at once: big enough that the hop costs nothing,
# small enough to bound the memory each stream holds.
BLOCK = 1024 * 1024
# `gzip -1`: exports are written once and read once; speed wins over ratio.
# (ISA-L's levels run 0-3, zlib's 1-9; 1 is a fast level in both.)
COMPRESS_LEVEL = 1


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


class GzipStream:
    """A gzip file (RFC 1952), compressed off the event loop by ISA-L."""

    def __init__(self, out: ByteSink, level: int = COMPRESS_LEVEL) -> None:
        self._out = out
        self._deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 16 + isal_zlib.MAX_WBITS)
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
        data = self._deflate.compress(block)
        return data + self._deflate.flush() if final else data


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


class _Spool:
    """Where zipfile writes; the bundle moves its content on to the upload."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class ZipBundle:
    """A zip file written as a stream: members one at a time, each with a data
    descriptor (nothing is seeked back to) and ZIP64 fields (no 4 GiB limit)."""

    def __init__(
        self, out: ByteSink, modified: datetime | None = None, level: int = COMPRESS_LEVEL
    ) -> None:
        self._out = out
        self._spool = _Spool()
        self._open: ZipMember | None = None
        self._level = level
        # Zip stores a local date and time without a zone; a bundle's members carry
        # its generation time (the manifest's, in UTC) rather than zipfile's default
        # of 1980-01-01, which unzip tools would show as the files' date.
        self._date_time = (modified or datetime.now(UTC)).timetuple()[:6]
        # A file object without tell() or seek() makes zipfile stream.
        self._zip = zipfile.ZipFile(
            self._spool,
            "w",
            compression=zipfile.ZIP_DEFLATED,
            compresslevel=level,
        )

    def member(self, name: str, *, deflate: bool = True) -> ZipMember:
        """Open the member ``name``; ``deflate=False`` stores its bytes as they come
        (content that does not shrink: see ``file_members.should_deflate``)."""
        self._open = ZipMember(self, name, deflate)
        return self._open

    def discard(self) -> None:
        """Drop a bundle that will not be completed (its export failed): close what
        is open, into a spool that goes nowhere. Without it, zipfile raises at
        garbage collection about the member left open for writing."""
        with contextlib.suppress(Exception):
            if self._open is not None:
                self._open._file.close()
            self._zip.close()
        self._spool.buffer = bytearray()

    async def add(self, name: str, data: bytes) -> MemberStats:
        member = self.member(name)
        await member.write(data)
        return await member.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._zip.close)
        await self._drain()

    def _info(self, name: str, deflate: bool = True) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        # Python reads a member's level from this attribute (public as
        # compress_level from 3.13, which keeps this name as an alias). Without
        # it a member given as a ZipInfo deflates at zlib's default level (6), not
        # at the bundle's.
        info._compresslevel = self._level  # type: ignore[attr-defined]
        info.external_attr = 0o644 << 16  # a regular file, readable once unpacked
        return info

    async def _drain(self) -> None:
        data = self._spool.take()
        if data:
            await self._out.write(data)


class ZipMember:
    """One member being written: hashes and counts its uncompressed bytes."""

    def __init__(self, bundle: ZipBundle, name: str, deflate: bool = True) -> None:
        self._bundle = bundle
        self._name = name
        self._file = bundle._zip.open(bundle._info(name, deflate), "w", force_zip64=True)
        self._hasher = hashlib.sha256()
        self._size = 0
        self._pending = bytearray()

    async def write(self, data: bytes) -> None:
        await fill_blocks(self._pending, data, self._flush)

    async def close(self) -> MemberStats:
        await self._flush()
        await asyncio.to_thread(self._file.close)
        await self._bundle._drain()
        return MemberStats(self._name, self._size, self._hasher.hexdigest())

    async def _flush(self) -> None:
        if not self._pending:
            return
        block = bytes(self._pending)
        self._pending.clear()
        self._size += len(block)
        await asyncio.to_thread(self._run, block)
        await self._bundle._drain()

    def _run(self, block: bytes) -> None:
        self._hasher.update(block)
        self._file.write(block)
