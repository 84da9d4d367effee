"""A dataset's byte stream cut into numbered parts of at most ``split_rows`` records.

``SplitSink`` is a ``ByteSink`` in front of the parts: it passes bytes on to the
part being written and, once that part holds ``split_rows`` records, closes it and
opens the next (through the caller's ``open_part(number)``) the moment the next
record's first byte arrives, so a result of exactly ``n * split_rows`` records has
``n`` parts, never an empty one after them. Parts are written as the stream comes:
nothing but a CSV header (one record, held to the row limit before it gets here) is
kept.

Records end at a newline. In CSV (``quoted``) only at a newline outside double
quotes: Postgres and Python's csv module quote fields holding a newline and write a
quote inside one as two, so quote parity tells the two apart exactly (as
``streams.CsvRecords`` counts them). JSON Lines escape newlines inside their text, so
every newline ends one. With ``header``, the stream's first record is the CSV header:
it is captured and written again at the start of every later part, and is not a row.

``open_part`` is where per-file wrappers go (a byte order mark, CRLF line ends, a
JSON array around each part): whatever it returns receives exactly one part's bytes,
header included, and is closed when the part ends.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Protocol

from exportd.export.streams import BLOCK, blocks

_QUOTE_OR_NEWLINE = re.compile(rb'["\n]')


class PartSink(Protocol):
    """One part being written: its bytes, then ``close`` once."""

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


OpenPart = Callable[[int], Awaitable[PartSink]]


def part_name(dataset: str, number: int, extension: str) -> str:
    """``<dataset>-0001.<extension>``: the part's 1-based number in four digits, more
    when it needs them (``orders-12345.csv``)."""
    if number < 1:
        raise ValueError(f"parts are numbered from 1, got {number}")
    return f"{dataset}-{number:04d}.{extension.lstrip('.')}"


def count_ends(data: bytes, *, quoted: bool, inside: bool) -> tuple[int, bool]:
    """``(ends, inside_after)``: the record ends (newlines outside quotes; every newline
    without ``quoted``) in ``data``, which starts inside a quoted field when ``inside``,
    and whether it ends inside one."""
    if not quoted or b'"' not in data:
        return (0 if inside else data.count(b"\n")), inside
    pieces = data.split(b'"')
    # Pieces alternate outside and inside quotes, starting from where data starts.
    outside = pieces[1::2] if inside else pieces[0::2]
    ends = sum(piece.count(b"\n") for piece in outside)
    # An odd number of quotes (an even number of pieces) flips the state.
    return ends, inside != (len(pieces) % 2 == 0)


def nth_end(data: bytes, n: int, *, quoted: bool, inside: bool) -> int:
    """The index of the ``n``-th (from 1) record end in ``data`` (as ``count_ends``
    counts them), or -1 when it has fewer."""
    if n < 1:
        raise ValueError(f"n counts from 1, got {n}")
    if not quoted or (b'"' not in data and not inside):
        at = -1
        for _ in range(n):
            at = data.find(b"\n", at + 1)
            if at == -1:
                return -1
        return at
    for match in _QUOTE_OR_NEWLINE.finditer(data):
        if data[match.start()] == 0x22:  # '"': a doubled quote flips twice
            inside = not inside
        elif not inside:
            n -= 1
            if n == 0:
                return match.start()
    return -1


class SplitSink:
    """Cuts a CSV or JSON Lines stream into parts of at most ``split_rows`` records
    (module docstring). Not safe for concurrent writes; ``close`` once, at the end:
    it returns the rows of each part, in order (at least one part, possibly empty)."""

    def __init__(self, open_part: OpenPart, *, split_rows: int, quoted: bool, header: bool) -> None:
        if split_rows < 1:
            raise ValueError(f"split_rows must be at least 1, got {split_rows}")
        self._open_part = open_part
        self._limit = split_rows
        self._quoted = quoted
        self._capturing = header  # the header's bytes are still arriving
        self._header = bytearray()
        self._inside = False  # inside a quoted field
        self._part: PartSink | None = None
        self._rows = 0  # whole records in the part being written
        self._partial = False  # the part ends in the middle of a record
        self._done: list[int] = []

    async def write(self, data: bytes) -> None:
        if len(data) <= BLOCK:
            await self._block(data)
            return
        # A large row a block at a time: what is copied here stays a block.
        for view in blocks(data):
            await self._block(bytes(view))

    async def close(self) -> list[int]:
        part = await self._current()
        await part.close()
        self._done.append(self._rows + self._partial)
        self._part = None
        return list(self._done)

    async def _block(self, data: bytes) -> None:
        start = 0
        while start < len(data):
            if self._capturing:
                start = await self._header_from(data, start)
                continue
            if self._rows >= self._limit:
                await self._next_part()
            start = await self._records_from(data, start)

    async def _header_from(self, data: bytes, start: int) -> int:
        piece = data[start:]
        end = nth_end(piece, 1, quoted=self._quoted, inside=self._inside)
        if end == -1:
            _, self._inside = count_ends(piece, quoted=self._quoted, inside=self._inside)
        else:
            piece, self._inside, self._capturing = piece[: end + 1], False, False
        self._header += piece
        await (await self._current()).write(piece)
        return start + len(piece)

    async def _records_from(self, data: bytes, start: int) -> int:
        """Write records of ``data[start:]`` to the part, up to the end of the part's
        last record; returns where it stopped."""
        piece = data[start:] if start else data
        wanted = self._limit - self._rows
        ends, inside = count_ends(piece, quoted=self._quoted, inside=self._inside)
        if ends < wanted:
            self._rows += ends
            self._inside = inside
        else:
            end = nth_end(piece, wanted, quoted=self._quoted, inside=self._inside)
            piece = piece[: end + 1]
            self._rows, self._inside = self._limit, False
        self._partial = not piece.endswith(b"\n") or self._inside
        await (await self._current()).write(piece)
        return start + len(piece)

    async def _current(self) -> PartSink:
        if self._part is None:
            self._part = await self._open_part(len(self._done) + 1)
        return self._part

    async def _next_part(self) -> None:
        part = await self._current()
        await part.close()
        self._done.append(self._rows)
        self._part = await self._open_part(len(self._done) + 1)
        self._rows, self._partial = 0, False
        if self._header:
            await self._part.write(bytes(self._header))
