"""The bytes of the part being filled, handed over whole to its upload. No I/O.

A full part goes to botocore as the very bytearray that was filled: nothing
copies it (a pass over every byte saved), and botocore sends a bytearray as it
is, signing it with its SHA-256 in one call, where bytes would be wrapped in a
file object, read a MiB at a time to be signed and read again to be sent.
"""

from __future__ import annotations


class PartBuffer:
    """Up to ``part_size`` bytes. The first part's buffer grows as it is written (a
    small object's stays small); each one after is allocated whole and filled in
    place, since an object that filled a part is likely to fill the next."""

    def __init__(self, part_size: int) -> None:
        self._part_size = part_size
        self._buffer = bytearray()
        self._filled = 0
        # Allocate a part's room at the next fill: not before, so that a buffer
        # no more bytes come to (after an object's last part) holds no memory.
        self._room_next = False

    def __len__(self) -> int:
        return self._filled

    @property
    def full(self) -> bool:
        return self._filled == self._part_size

    def fill(self, view: memoryview) -> memoryview:
        """Copy as much of ``view`` as fits; returns the rest (empty when all fit)."""
        if self._room_next:
            self._buffer, self._room_next = bytearray(self._part_size), False
        taken = view[: self._part_size - self._filled]
        end = self._filled + len(taken)
        self._buffer[self._filled : end] = taken
        self._filled = end
        return view[len(taken) :]

    def take(self, *, refill: bool = True) -> bytearray:
        """The bytes filled so far, no longer written to; the buffer starts again
        empty (a part's room allocated whole at the next fill when ``refill``)."""
        whole = self._filled == len(self._buffer)
        part = self._buffer if whole else self._buffer[: self._filled]
        self._buffer, self._filled, self._room_next = bytearray(), 0, refill
        return part
