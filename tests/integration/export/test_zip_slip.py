"""Zip-slip: a bundle whose member paths come from hostile data is extracted by
Info-ZIP unzip, Python's zipfile and 7-Zip, and nothing lands outside the target
folder. The bundle is written as the daemon writes it (``ZipBundle``, names from
``MemberNames``), deflated and stored members both."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from exportd.export.member_names import MemberNames
from exportd.export.zip_stream import ZipBundle
from tests.unit.export.test_member_names import HOSTILE

EXTRA = ["dup.txt", "DUP.txt", "dup.txt", "dir", "dir/inner.txt", "évidence/ünïcode.pdf"]


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data


async def hostile_bundle() -> tuple[bytes, list[str]]:
    out = Collect()
    bundle = ZipBundle(out)
    names = MemberNames(("manifest.json",))
    written = []
    for number, raw in enumerate([raw for raw, _ in HOSTILE] + EXTRA):
        name = names.claim("files/receipts", raw)
        member = bundle.member(name, deflate=number % 2 == 0)
        await member.write(f"content {number}\n".encode())
        await member.close()
        written.append(name)
    await bundle.add("manifest.json", b"{}\n")
    await bundle.close()
    return bytes(out.data), written


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def extractors() -> list[str]:
    return ["zipfile", "unzip", "7z"]


@pytest.mark.parametrize("tool", extractors())
async def test_hostile_names_extract_inside_the_folder(tmp_path: Path, tool: str) -> None:
    body, written = await hostile_bundle()
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(body)
    target = tmp_path / "sandbox" / "out"
    target.mkdir(parents=True)
    before = files_under(tmp_path)
    if tool == "zipfile":
        with zipfile.ZipFile(archive) as bundle:
            assert bundle.testzip() is None
            bundle.extractall(target)
    else:
        binary = shutil.which(tool)
        if binary is None:
            pytest.skip(f"{tool} is not installed (make test installs p7zip-full)")
        argv = (
            [binary, "-q", "-n", str(archive), "-d", str(target)]
            if tool == "unzip"
            else [binary, "x", "-y", f"-o{target}", str(archive)]
        )
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    after = files_under(tmp_path)
    outside = {p for p in after - before if not p.startswith("sandbox/out/")}
    assert outside == set()
    extracted = files_under(target)
    # Every member extracted, under its own name, each with its own content.
    assert extracted == {*written, "manifest.json"}
    for number, name in enumerate(written):
        assert (target / name).read_text() == f"content {number}\n"
    assert not any(os.path.islink(target / name) for name in written)


async def test_non_ascii_names_carry_the_utf8_flag() -> None:
    body, _ = await hostile_bundle()
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        for info in bundle.infolist():
            if not info.filename.isascii():
                assert info.flag_bits & 0x800
