"""The zip bundle's own writer, read back by Python's zipfile, and compared byte for
byte with what zipfile writes for the same stream."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zipfile
from datetime import UTC, datetime

import pytest

from exportd.export.streams import BLOCK
from exportd.export.zip_records import COUNT_LIMIT, MARK_16, MARK_32, dos_stamp
from exportd.export.zip_stream import ZipBundle

MADE = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    async def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1


class _Unseekable(io.RawIOBase):
    """Where zipfile writes as it does for a stream: no tell(), no seek()."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.data += data
        return len(data)


def zipfile_stream(members: list[tuple[str, bytes]]) -> bytes:
    """The members written by zipfile as the bundle wrote them before it had its own
    writer: stored, streamed, each member with ZIP64 fields."""
    out = _Unseekable()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=MADE.timetuple()[:6])
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as member:
                member.write(data)
    return bytes(out.data)


async def bundle_of(members: list[tuple[str, bytes]], *, force_zip64: bool = False) -> bytes:
    out = Collect()
    bundle = ZipBundle(out, MADE, force_zip64=force_zip64)
    for name, data in members:
        await bundle.add(name, data)
    await bundle.close()
    return bytes(out.data)


async def test_stored_members_are_byte_for_byte_what_zipfile_writes() -> None:
    members = [
        ("rows.csv", b"a,b\n1,2\n"),
        ("empty.csv", b""),
        ("évidence/ünïcode.pdf", b"%PDF" * 1000),
        ("big.bin", random.Random(3).randbytes(2 * BLOCK + 17)),
        ("manifest.json", b"{}\n"),
    ]
    out = Collect()
    bundle = ZipBundle(out, MADE)
    for name, data in members:
        member = bundle.member(name, deflate=False)
        await member.write(data)
        await member.close()
    await bundle.close()
    assert bytes(out.data) == zipfile_stream(members)


async def test_a_zip_bundles_members_carry_its_date_and_its_compression_level() -> None:
    rng = random.Random(7)
    text = "".join(f"{rng.randrange(10**9)},{rng.choice('abcdef') * 3}\n" for _ in range(50_000))
    sizes = {}
    for level in (0, 3):
        out = Collect()
        bundle = ZipBundle(out, MADE, level=level)
        await bundle.add("rows.csv", text.encode())
        await bundle.close()
        with zipfile.ZipFile(io.BytesIO(bytes(out.data))) as archive:
            (info,) = archive.infolist()
            assert archive.read("rows.csv") == text.encode()
        assert info.date_time == (2026, 3, 14, 15, 9, 26)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.external_attr >> 16 == 0o644
        assert info.flag_bits & 0x08, "sizes and CRC follow the data"
        sizes[level] = info.compress_size
    assert sizes[3] < sizes[0], "each level is the bundle's"


async def test_a_zip_bundle_is_streamed_and_records_each_member() -> None:
    out = Collect()
    bundle = ZipBundle(out)
    big = bytes(range(256)) * 10_000
    member = bundle.member("big.bin")
    for start in range(0, len(big), 300_000):
        await member.write(big[start : start + 300_000])
    stats = await member.close()
    written = out.writes
    empty = await bundle.add("empty.csv", b"")
    stored = bundle.member("photo.jpg", deflate=False)
    await stored.write(big[:1000])
    photo = await stored.close()
    await bundle.close()
    assert written > len(big) // BLOCK, "the zip is passed on as it is made"
    assert (stats.name, stats.bytes, stats.sha256) == (
        "big.bin",
        len(big),
        hashlib.sha256(big).hexdigest(),
    )
    assert (empty.bytes, empty.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert photo.sha256 == hashlib.sha256(big[:1000]).hexdigest()
    with zipfile.ZipFile(io.BytesIO(bytes(out.data))) as archive:
        assert archive.namelist() == ["big.bin", "empty.csv", "photo.jpg"]
        assert archive.read("big.bin") == big
        assert archive.read("empty.csv") == b""
        assert archive.getinfo("photo.jpg").compress_type == zipfile.ZIP_STORED
        assert archive.getinfo("big.bin").compress_size < len(big)
        assert archive.testzip() is None


async def test_only_names_that_are_not_ascii_are_flagged_utf8() -> None:
    body = await bundle_of([("plain.csv", b"x"), ("日本語/Grüße 🎉.csv", b"y")])
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        plain, other = archive.infolist()
    assert (plain.filename, plain.flag_bits & 0x800) == ("plain.csv", 0)
    assert (other.filename, other.flag_bits & 0x800) == ("日本語/Grüße 🎉.csv", 0x800)


def end_record(body: bytes) -> tuple[int, ...]:
    """The end of central directory record's fields, from the zip's last 22 bytes."""
    return struct.unpack("<4s4H2LH", body[-22:])[1:]


async def test_forced_zip64_records_hold_only_marks_and_read_back() -> None:
    members = [("a.csv", b"1\n" * 5000), ("empty.csv", b""), ("ü.csv", b"2\n")]
    body = await bundle_of(members, force_zip64=True)
    _, _, on_disk, total, size, offset, _ = end_record(body)
    assert (on_disk, total, size, offset) == (MARK_16, MARK_16, MARK_32, MARK_32)
    assert b"PK\x06\x06" in body
    assert b"PK\x06\x07" in body
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert [(i.filename, archive.read(i)) for i in archive.infolist()] == members
        assert archive.testzip() is None
        # Every central header's sizes and offset are in its ZIP64 extra field.
        for info in archive.infolist():
            assert struct.unpack("<HH", info.extra[:4]) == (1, 24)


async def test_a_bundle_of_more_members_than_the_end_record_counts_has_zip64_ends() -> None:
    count = COUNT_LIMIT + 2
    out = Collect()
    bundle = ZipBundle(out, MADE)
    for number in range(count):
        member = bundle.member(f"m/{number}.txt", deflate=False)
        await member.write(b"%d\n" % number)
        await member.close()
    await bundle.close()
    body = bytes(out.data)
    assert end_record(body)[2:4] == (MARK_16, MARK_16)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        infos = archive.infolist()
        assert len(infos) == count
        assert archive.read(infos[-1]) == b"%d\n" % (count - 1)


async def test_a_member_opens_only_when_the_last_has_closed() -> None:
    bundle = ZipBundle(Collect())
    bundle.member("a.csv")
    with pytest.raises(ValueError, match="still open"):
        bundle.member("b.csv")
    with pytest.raises(ValueError, match="still open"):
        await bundle.close()


async def test_a_discarded_bundle_writes_nothing_more() -> None:
    out = Collect()
    bundle = ZipBundle(out)
    member = bundle.member("a.csv")
    await member.write(b"x" * (BLOCK + 1))
    written = len(out.data)
    bundle.discard()
    await member.write(b"y" * BLOCK)
    await member.close()
    await bundle.close()
    assert len(out.data) == written


def test_dos_stamps_keep_two_seconds_and_the_years_zip_can_hold() -> None:
    assert dos_stamp((2026, 3, 14, 15, 9, 27)) == (15 << 11 | 9 << 5 | 13, 46 << 9 | 3 << 5 | 14)
    assert dos_stamp((1970, 1, 1, 0, 0, 0)) == (0, 1 << 5 | 1)
    assert dos_stamp((2200, 1, 1, 0, 0, 0)) == dos_stamp((2107, 12, 31, 23, 59, 59))
