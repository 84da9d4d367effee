"""A zip file written as a stream: members one at a time, deflated by ISA-L.

Python's ``zipfile`` deflates with zlib and takes no other compressor; ISA-L's
deflate writes the same raw deflate (RFC 1951) at several times zlib's speed at
level 1. So the bundle writes the zip's records itself (``zip_records``, the ones
``zipfile`` writes for a stream) and deflates, hashes and checksums each block of
``BLOCK`` bytes in threads, off the event loop, as ``GzipStream`` does. Nothing is
seeked back to: each member's CRC and sizes follow its data in a data descriptor.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

from isal import isal_zlib

from exportd.export.streams import COMPRESS_LEVEL, ByteSink, MemberStats, fill_blocks
from exportd.export.zip_records import (
    DEFLATED,
    STORED,
    Entry,
    central_header,
    data_descriptor,
    dos_stamp,
    encode_name,
    end_records,
    local_header,
)

# Raw deflate, no zlib or gzip wrapper: a zip member's data is the bare stream.
RAW_DEFLATE = -isal_zlib.MAX_WBITS


class ZipBundle:
    """A zip file written as a stream: members one at a time, each with a data
    descriptor (nothing is seeked back to) and ZIP64 fields (no 4 GiB limit).

    ``level``: ISA-L's deflate level (0 to 3). ``force_zip64`` writes the central
    directory and end records in their ZIP64 form whatever the sizes (what a bundle
    over 4 GiB gets, made testable on small ones)."""

    def __init__(
        self,
        out: ByteSink,
        modified: datetime | None = None,
        level: int = COMPRESS_LEVEL,
        *,
        force_zip64: bool = False,
    ) -> None:
        self._out = out
        self._level = level
        self._force_zip64 = force_zip64
        self._offset = 0  # bytes written so far: where the next record starts
        self._entries: list[Entry] = []
        self._open: ZipMember | None = None
        self._discarded = False
        # Zip stores a local date and time without a zone; a bundle's members carry
        # its generation time (the manifest's, in UTC) rather than the 1980-01-01 of
        # an unset stamp, which unzip tools would show as the files' date.
        self._dos_time, self._dos_date = dos_stamp((modified or datetime.now(UTC)).timetuple()[:6])

    def member(self, name: str, *, deflate: bool = True) -> ZipMember:
        """Open the member ``name``; ``deflate=False`` stores its bytes as they come
        (content that does not shrink: see ``file_members.should_deflate``). Raises
        ValueError while another member is open."""
        if self._open is not None:
            raise ValueError(f"member {self._open.name!r} is still open")
        self._open = ZipMember(self, name, deflate)
        return self._open

    def discard(self) -> None:
        """Drop a bundle that will not be completed (its export failed): nothing more
        is written, whatever is open."""
        self._discarded = True
        self._open = None
        self._entries = []

    async def add(self, name: str, data: bytes) -> MemberStats:
        member = self.member(name)
        await member.write(data)
        return await member.close()

    async def close(self) -> None:
        """Write the central directory and the end records. Raises ValueError while a
        member is open."""
        if self._open is not None:
            raise ValueError(f"member {self._open.name!r} is still open")
        start = self._offset
        directory = b"".join(central_header(e, self._force_zip64) for e in self._entries)
        ending = end_records(len(self._entries), len(directory), start, self._force_zip64)
        await self._emit(directory + ending)

    async def _emit(self, data: bytes) -> None:
        if data and not self._discarded:
            self._offset += len(data)
            await self._out.write(data)


class ZipMember:
    """One member being written: hashes and counts its uncompressed bytes."""

    def __init__(self, bundle: ZipBundle, name: str, deflate: bool = True) -> None:
        self.name = name
        self._bundle = bundle
        self._encoded, self._flags = encode_name(name)
        self._method = DEFLATED if deflate else STORED
        self._deflate = (
            isal_zlib.compressobj(bundle._level, isal_zlib.DEFLATED, RAW_DEFLATE)
            if deflate
            else None
        )
        self._offset = bundle._offset
        self._started = False
        self._hasher = hashlib.sha256()
        self._crc = 0
        self._size = 0
        self._compressed = 0
        self._pending = bytearray()

    async def write(self, data: bytes) -> None:
        await fill_blocks(self._pending, data, self._flush)

    async def close(self) -> MemberStats:
        await self._flush()
        if self._deflate is not None:
            await self._put(await asyncio.to_thread(self._deflate.flush))
        await self._start()
        bundle = self._bundle
        await bundle._emit(data_descriptor(self._crc, self._compressed, self._size))
        bundle._entries.append(
            Entry(
                self._encoded,
                self._flags,
                self._method,
                bundle._dos_time,
                bundle._dos_date,
                self._crc,
                self._compressed,
                self._size,
                self._offset,
            )
        )
        bundle._open = None
        return MemberStats(self.name, self._size, self._hasher.hexdigest())

    async def _start(self) -> None:
        """The local header, before the member's first bytes (or its descriptor)."""
        if self._started:
            return
        self._started = True
        bundle = self._bundle
        self._offset = bundle._offset
        await bundle._emit(
            local_header(
                self._encoded, self._flags, self._method, bundle._dos_time, bundle._dos_date
            )
        )

    async def _flush(self) -> None:
        if not self._pending:
            return
        block = bytes(self._pending)
        self._pending.clear()
        self._size += len(block)
        # SHA-256 costs about 40% of ISA-L's deflate, and both release the GIL: in
        # two threads at once a block takes the longer of the two, not their sum.
        _, data = await asyncio.gather(
            asyncio.to_thread(self._hasher.update, block), asyncio.to_thread(self._run, block)
        )
        await self._put(data)

    async def _put(self, data: bytes) -> None:
        await self._start()
        self._compressed += len(data)
        await self._bundle._emit(data)

    def _run(self, block: bytes) -> bytes:
        """In a thread: checksum and deflate one block; what to write of it."""
        self._crc = isal_zlib.crc32(block, self._crc)
        return block if self._deflate is None else self._deflate.compress(block)
