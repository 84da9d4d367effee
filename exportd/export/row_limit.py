"""The per-row term of an export's memory, and its bound (``EXPORTD_MAX_ROW_BYTES``).

COPY sends each row as one CopyData message, and asyncpg hands its sink only
whole messages: it keeps a row's bytes as they arrive, then joins them into
one buffer for the sink. A row therefore costs about twice its size, for a
moment, whatever the part size. Two guards keep that term bounded:

- ``watch_rows`` sees the connection's bytes as they arrive. When more than
  ``limit + ROW_WATCH_SLACK_BYTES`` have arrived since asyncpg last handed
  rows over, the row in transit is over the limit, and the connection is
  closed before asyncpg holds any more of it (the row is never joined).
- ``RowBound`` sits in front of the streams and measures each record the
  sink is given: the exact rule, and the only one for rows a Python handler
  yields (encoded here, never sent by Postgres) or where the watch cannot be
  installed. Only a write longer than the limit is measured, so the usual
  writes (a few KiB of many rows) cost one comparison.

A row of at most the limit is written; a larger one fails the job with
``too_large``, naming the row, its size, the limit and the setting. Peak per
row: about twice the row for rows that pass, at most about twice
``limit + ROW_WATCH_SLACK_BYTES`` for one refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from exportd.errors import ErrorKind, ExportError
from exportd.export.streams import ByteSink
from exportd.limits import ROW_WATCH_SLACK_BYTES

SETTING = "EXPORTD_MAX_ROW_BYTES"
# A CopyData message's header: its type byte and a 4-byte length.
_COPY_DATA_HEADER = 5
_QUOTE_OR_NEWLINE = re.compile(rb'["\n]')


def longest_record(data: bytes, *, quoted: bool) -> tuple[int, int]:
    """``(index, size)`` of the longest record of ``data``: its 0-based position
    and its length in bytes, newline included (a last record without one counts
    as a record). ``data`` starts at a record's start.

    Records end at a newline. With ``quoted`` (CSV: Postgres's and Python's
    csv writers quote with '"' and double a quote inside a field), only at a
    newline outside quotes, so text with line breaks is one record. Without it
    (JSON Lines: JSON text escapes its newlines) at every newline.
    """
    best_index, best_size, index, start = 0, 0, 0, 0
    ends = _csv_record_ends(data) if quoted and b'"' in data else _newlines(data)
    for end in ends:
        if end + 1 - start > best_size:
            best_index, best_size = index, end + 1 - start
        index, start = index + 1, end + 1
    if len(data) - start > best_size:
        best_index, best_size = index, len(data) - start
    return best_index, best_size


def _csv_record_ends(data: bytes) -> Iterator[int]:
    inside = False
    for match in _QUOTE_OR_NEWLINE.finditer(data):
        if data[match.start()] == 0x22:  # '"': a doubled quote flips twice
            inside = not inside
        elif not inside:
            yield match.start()


def _newlines(data: bytes) -> Iterator[int]:
    at = data.find(b"\n")
    while at != -1:
        yield at
        at = data.find(b"\n", at + 1)


def row_too_large(what: str, row: int, size: int, limit: int, *, arriving: bool) -> ExportError:
    """The permanent failure of row ``row`` (1-based) of ``what``, of ``size``
    bytes against ``limit``; ``arriving``: refused while it arrived, so ``size``
    is only what had arrived of it."""
    measured = (
        f"more than {size:,} bytes of it had arrived when it was refused"
        if arriving
        else f"it is {size:,} bytes"
    )
    return ExportError(
        ErrorKind.TOO_LARGE,
        f"row {row:,} of {what} is larger than the limit of {limit:,} bytes per row "
        f"({SETTING}): {measured}; leave the large column out of the export, or raise "
        f"{SETTING} (each row costs about twice its size in memory)",
    )


class RowBound:
    """A ``ByteSink`` that refuses a record over ``limit`` bytes before passing
    the write on. ``rows_before()`` is the rows of the dataset already written
    (to name the row); ``header``: the first write starts with a header line,
    which is not a row."""

    def __init__(
        self,
        out: ByteSink,
        *,
        limit: int,
        what: str,
        quoted: bool,
        header: bool,
        rows_before: Callable[[], int],
    ) -> None:
        self._out = out
        self._limit = limit
        self._what = what
        self._quoted = quoted
        self._header = header
        self._rows_before = rows_before

    async def write(self, data: bytes) -> None:
        header, self._header = self._header, False
        if len(data) > self._limit:
            # Tens of MiB scanned quote by quote: off the loop, so heartbeats go on.
            index, size = await asyncio.to_thread(longest_record, data, quoted=self._quoted)
            if size > self._limit:
                row = self._rows_before() + index + (0 if header else 1)
                raise row_too_large(self._what, max(row, 1), size, self._limit, arriving=False)
        await self._out.write(data)


class _Watch(asyncio.Protocol):
    """Stands between a connection's transport and asyncpg's protocol during one
    COPY, counting the bytes that arrive. asyncpg pauses reading each time it
    hands rows to the sink (until the sink is done): what arrives between two
    pauses is the row in transit (plus the end of a read)."""

    def __init__(self, transport: Any, inner: Any, threshold: int, over: Callable[[int], None]):
        self._transport = transport
        self._inner = inner
        self._threshold = threshold
        self._over = over
        self._pending = 0
        self._tripped = False

    def data_received(self, data: bytes) -> None:
        if self._tripped:
            return  # the connection is closing; asyncpg must hold no more of the row
        self._pending += len(data)
        self._inner.data_received(data)
        if not self._transport.is_reading():
            self._pending = 0  # rows were handed over; the next row starts about here
        elif self._pending > self._threshold:
            self._tripped = True
            self._over(self._pending - _COPY_DATA_HEADER)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


@contextlib.contextmanager
def watch_rows(conn: Any, limit: int, over: Callable[[int], None]) -> Iterator[bool]:
    """Watch ``conn`` (an asyncpg connection, or a pool's proxy of one) for a
    row of more than ``limit`` bytes arriving, for the duration of the block;
    ``over(received)`` is called (once) with what had arrived of it, and must
    close the connection. Yields False (and watches nothing) where the
    transport cannot be watched: ``RowBound`` then still applies the limit,
    after asyncpg has joined the row.

    asyncpg offers no hook on arriving messages, so this uses its connection's
    transport and protocol (private attributes, stable since asyncpg 0.18) and
    asyncio's public ``set_protocol`` and ``is_reading``; a test holds it to
    the asyncpg installed.
    """
    transport = getattr(conn, "_transport", None)
    inner = getattr(conn, "_protocol", None)
    usable = (
        transport is not None
        and inner is not None
        and hasattr(transport, "set_protocol")
        and hasattr(transport, "is_reading")
        and transport.get_protocol() is inner
    )
    if not usable:
        yield False
        return
    assert transport is not None
    transport.set_protocol(_Watch(transport, inner, limit + ROW_WATCH_SLACK_BYTES, over))
    try:
        yield True
    finally:
        transport.set_protocol(inner)
