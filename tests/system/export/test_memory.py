"""exportd run fixes glibc's mmap threshold, so export-sized blocks stay mapped.

Checked in a fresh interpreter each time (the threshold is process state):
a 16 MiB block is freed, which raises glibc's dynamic threshold to 16 MiB,
then a 4 MiB block, smaller than a part, is allocated. mallinfo2 tells
whether it came from mmap (given back when freed) or from the heap (kept).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

_PROBE = """
import ctypes, ctypes.util, sys
from exportd.export.memory import keep_large_buffers_mapped

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
    ).split()]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
if not hasattr(libc, "mallinfo2"):
    print("no-glibc")
    raise SystemExit
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    assert keep_large_buffers_mapped()
big = bytearray(16 * 2**20)
del big
before = libc.mallinfo2().hblkhd
block = bytearray(4 * 2**20)
print((libc.mallinfo2().hblkhd - before) // 2**20)
"""


def _mapped_mib(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_blocks_smaller_than_a_freed_part_stay_mapped() -> None:
    control = _mapped_mib("plain")
    if control == "no-glibc":
        pytest.skip("no glibc (mallinfo2) in this C library")
    if control != "0":
        pytest.skip("this glibc maps the block without help; nothing to show")
    assert _mapped_mib("fixed") == "4", "the 4 MiB block came from the heap, not mmap"
