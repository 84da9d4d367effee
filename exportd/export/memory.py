"""Keep the export buffers out of the C heap, so a long-lived daemon's RSS
returns to its baseline after each export.

An export moves its bytes in blocks of a part size (megabytes): the part
being filled, the copies in flight to S3, compression blocks. glibc serves
blocks that large with mmap and gives them back on free, but each such free
also raises its mmap threshold (up to 32 MiB), after which blocks of that size
come from the heap instead. Freed heap memory between live objects is not
returned to the system, so RSS then creeps up from export to export: a
daemon that sat at 85 MB idle held 100-145 MB between exports of 2 million
rows, against 86-91 MB with the threshold fixed (`make bench` prints the
daemon's RSS after its exports). A fixed threshold keeps every large block
mapped, and given back when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt's parameter number for the mmap threshold, from glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
# Blocks from 1 MiB up are mapped: far above what Python's own small objects
# and asyncpg's record buffers use, and below every export block.
MMAP_THRESHOLD = 1024 * 1024


def keep_large_buffers_mapped(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes; False where there is
    no glibc (macOS, musl), whose allocators need no such help."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))
