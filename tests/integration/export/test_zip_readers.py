"""Bundles written by ``ZipBundle`` (ISA-L's deflate, its own records) read back by
Info-ZIP unzip, 7-Zip and Python's zipfile: tested with each one's CRC check, and
extracted to the same bytes. ZIP64 records are forced on a small bundle (a member
over 4 GiB is too slow to write in a test), and reached for real by the member count.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exportd.export.streams import BLOCK
from exportd.export.zip_records import COUNT_LIMIT
from exportd.export.zip_stream import ZipBundle


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data


def rows(count: int) -> bytes:
    rng = random.Random(count)
    return b"".join(
        b'%d,%d,%s,"note, %s"\n' % (n, rng.randrange(10**9), rng.randbytes(6).hex().encode(), b"x")
        for n in range(count)
    )


# (name, bytes, deflated)
MEMBERS = [
    ("rows.csv", rows(120_000), True),  # several blocks
    ("empty.csv", b"", True),
    ("stored/photo.jpg", random.Random(1).randbytes(BLOCK + 99), False),
    ("évidence/日本語 🎉.csv", "Grüße\n".encode() * 1000, True),
    ("manifest.json", b'{"members": []}\n', True),
]


async def write_bundle(force_zip64: bool) -> bytes:
    out = Collect()
    bundle = ZipBundle(out, datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC), force_zip64=force_zip64)
    for name, data, deflate in MEMBERS:
        member = bundle.member(name, deflate=deflate)
        for start in range(0, len(data), 700_000):
            await member.write(data[start : start + 700_000])
        await member.close()
    await bundle.close()
    return bytes(out.data)


def tool(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        pytest.skip(f"{name} is not installed (make test installs p7zip-full)")
    return binary


def run(argv: list[str]) -> str:
    done = subprocess.run(argv, check=True, capture_output=True, timeout=300)
    return done.stdout.decode("utf-8", "replace")


def extracted(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("force_zip64", [False, True], ids=["plain", "zip64"])
@pytest.mark.parametrize("reader", ["zipfile", "unzip", "7z"])
async def test_every_reader_tests_and_extracts_a_bundle(
    tmp_path: Path, reader: str, force_zip64: bool
) -> None:
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(await write_bundle(force_zip64))
    target = tmp_path / "out"
    if reader == "zipfile":
        with zipfile.ZipFile(archive) as bundle:
            assert bundle.testzip() is None
            assert [i.compress_type for i in bundle.infolist()] == [
                zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED for _, _, deflate in MEMBERS
            ]
            bundle.extractall(target)
    elif reader == "unzip":
        binary = tool("unzip")
        assert "No errors detected" in run([binary, "-t", str(archive)])
        run([binary, "-q", str(archive), "-d", str(target)])
    else:
        binary = tool("7z")
        assert "Everything is Ok" in run([binary, "t", str(archive)])
        run([binary, "x", "-y", f"-o{target}", str(archive)])
    assert extracted(target) == {name: data for name, data, _ in MEMBERS}


@pytest.mark.parametrize("reader", ["zipfile", "unzip", "7z"])
async def test_every_reader_tests_a_bundle_of_more_members_than_zip32_counts(
    tmp_path: Path, reader: str
) -> None:
    count = COUNT_LIMIT + 10
    out = Collect()
    bundle = ZipBundle(out)
    for number in range(count):
        member = bundle.member(f"files/{number:06d}.txt", deflate=number % 2 == 0)
        await member.write(b"file %d\n" % number)
        await member.close()
    await bundle.close()
    archive = tmp_path / "many.zip"
    archive.write_bytes(out.data)
    if reader == "zipfile":
        with zipfile.ZipFile(archive) as opened:
            assert len(opened.infolist()) == count
            assert opened.testzip() is None
    elif reader == "unzip":
        report = run([tool("unzip"), "-t", str(archive)])
        assert f"No errors detected in compressed data of {archive}" in report
        assert report.count("OK") == count
    else:
        report = run([tool("7z"), "t", str(archive)])
        assert "Everything is Ok" in report
        assert f"Files: {count}" in report
