"""The records of a zip file as a stream writes them. Pure, no I/O.

The layout is PKWARE's APPNOTE.TXT (6.3.x): for each member a local header, its
data, and a data descriptor (the header is written before the data, so its CRC and
sizes come after it); then the central directory, a header per member; then the end
records. Every member's local header carries a ZIP64 extra field and its descriptor
8-byte sizes, so a member may outgrow 4 GiB without anything being seeked back to.
The central directory and the end records use ZIP64 only where a value needs it
(or always, with ``force_zip64``), as Python's ``zipfile`` writes them: a bundle of
small members opens in the oldest unzip tools.

The records are the ones ``zipfile`` writes for a stream (``ZipFile.open(name, "w",
force_zip64=True)`` on an unseekable file): version 4.5, made on Unix, the UTF-8
flag only on names that are not ASCII.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# What zipfile takes as the largest 32-bit value (ZIP64_LIMIT): it moves any size or
# offset over 2 GiB into ZIP64 fields, for readers that took the 32-bit fields as signed.
ZIP64_LIMIT = (1 << 31) - 1
# The most members the end record counts in its 16 bits.
COUNT_LIMIT = 0xFFFF
# A field whose value is in the ZIP64 extra field instead (APPNOTE 4.4.8).
MARK_32 = 0xFFFFFFFF
MARK_16 = 0xFFFF

STORED = 0
DEFLATED = 8
# APPNOTE 4.4.3: 4.5, the version that reads ZIP64 (and deflate, 2.0).
VERSION = 45
# APPNOTE 4.4.2: "version made by" names the system whose attributes external_attr holds.
MADE_ON_UNIX = 3
# A regular file, readable by all, writable by its owner, once unpacked.
REGULAR_FILE = 0o644 << 16
FLAG_DATA_DESCRIPTOR = 0x08  # CRC and sizes follow the data
FLAG_UTF8_NAME = 0x800  # the name is UTF-8 (APPNOTE appendix D)

_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_DESCRIPTOR = struct.Struct("<4sLQQ")
_END = struct.Struct("<4s4H2LH")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
_ZIP64_EXTRA_ID = 0x0001


@dataclass(frozen=True)
class Entry:
    """A member once written: what its central directory header repeats."""

    name: bytes
    flags: int
    method: int  # STORED or DEFLATED
    dos_time: int
    dos_date: int
    crc: int
    compressed: int  # bytes of its data in the zip
    size: int  # bytes once unpacked
    offset: int  # of its local header, from the zip's first byte


def encode_name(name: str) -> tuple[bytes, int]:
    """``name`` as the zip stores it and the flags that say how: ASCII as it is, any
    other name as UTF-8 with ``FLAG_UTF8_NAME``. Raises ValueError for a name with
    a NUL (``member_names`` never makes one; zipfile would cut the name there)."""
    if "\x00" in name:
        raise ValueError(f"a zip member's name holds a NUL: {name!r}")
    try:
        return name.encode("ascii"), FLAG_DATA_DESCRIPTOR
    except UnicodeEncodeError:
        return name.encode("utf-8"), FLAG_DATA_DESCRIPTOR | FLAG_UTF8_NAME


def dos_stamp(date_time: tuple[int, ...]) -> tuple[int, int]:
    """(time, date) in MS-DOS form from (year, month, day, hour, minute, second): two
    seconds' precision, years 1980 to 2107 (a date outside is held at the nearest)."""
    year, month, day, hour, minute, second = date_time[:6]
    if year < 1980:
        year, month, day, hour, minute, second = 1980, 1, 1, 0, 0, 0
    elif year > 2107:
        year, month, day, hour, minute, second = 2107, 12, 31, 23, 59, 59
    return hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day


def local_header(name: bytes, flags: int, method: int, dos_time: int, dos_date: int) -> bytes:
    """A member's local header, written before its data: CRC 0 and sizes in the
    ZIP64 extra field as 0 (APPNOTE 4.3.9.1: the data descriptor gives them)."""
    extra = struct.pack("<HHQQ", _ZIP64_EXTRA_ID, 16, 0, 0)
    head = _LOCAL.pack(
        b"PK\x03\x04",
        VERSION,
        0,
        flags,
        method,
        dos_time,
        dos_date,
        0,
        MARK_32,
        MARK_32,
        len(name),
        len(extra),
    )
    return head + name + extra


def data_descriptor(crc: int, compressed: int, size: int) -> bytes:
    """What follows a member's data: its CRC-32 and sizes, 8 bytes each (the local
    header has a ZIP64 extra field, APPNOTE 4.3.9.2)."""
    return _DESCRIPTOR.pack(b"PK\x07\x08", crc, compressed, size)


def central_header(entry: Entry, force_zip64: bool = False) -> bytes:
    """A member's header in the central directory. Sizes (both, as zipfile writes
    them) and the offset go into a ZIP64 extra field when over ``ZIP64_LIMIT``, or
    always with ``force_zip64``."""
    fields: list[int] = []
    compressed, size, offset = entry.compressed, entry.size, entry.offset
    if force_zip64 or max(size, compressed) > ZIP64_LIMIT:
        fields += [size, compressed]
        compressed = size = MARK_32
    if force_zip64 or offset > ZIP64_LIMIT:
        fields.append(offset)
        offset = MARK_32
    extra = b""
    if fields:
        extra = struct.pack(f"<HH{len(fields)}Q", _ZIP64_EXTRA_ID, 8 * len(fields), *fields)
    head = _CENTRAL.pack(
        b"PK\x01\x02",
        VERSION,
        MADE_ON_UNIX,
        VERSION,
        0,
        entry.flags,
        entry.method,
        entry.dos_time,
        entry.dos_date,
        entry.crc,
        compressed,
        size,
        len(entry.name),
        len(extra),
        0,  # comment
        0,  # disk
        0,  # internal attributes
        REGULAR_FILE,
        offset,
    )
    return head + entry.name + extra


def end_records(count: int, size: int, offset: int, force_zip64: bool = False) -> bytes:
    """What ends the zip after its central directory of ``count`` headers, ``size``
    bytes, starting at ``offset``: the ZIP64 end record and its locator when a value
    does not fit the end record (or with ``force_zip64``, which then holds only marks,
    so that a reader must use the ZIP64 record), and the end record."""
    zip64 = force_zip64 or count > COUNT_LIMIT or max(size, offset) > ZIP64_LIMIT
    if not zip64:
        return _END.pack(b"PK\x05\x06", 0, 0, count, count, size, offset, 0)
    end64_at = offset + size
    end64 = _END64.pack(
        b"PK\x06\x06",
        _END64.size - 12,  # the record's size after this field
        MADE_ON_UNIX << 8 | VERSION,
        VERSION,
        0,
        0,
        count,
        count,
        size,
        offset,
    )
    locator = _LOCATOR64.pack(b"PK\x06\x07", 0, end64_at, 1)
    if force_zip64:
        count, size, offset = MARK_16, MARK_32, MARK_32
    end = _END.pack(
        b"PK\x05\x06",
        0,
        0,
        min(count, MARK_16),
        min(count, MARK_16),
        min(size, MARK_32),
        min(offset, MARK_32),
        0,
    )
    return end64 + locator + end
