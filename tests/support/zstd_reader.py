"""Zstandard files read back by two decoders: the ``zstandard`` package and the
``zstd`` command-line tool (the reference implementation's), when it is installed
(``make test`` installs it)."""

from __future__ import annotations

import io
import shutil
import subprocess

import zstandard


def unzstd(body: bytes) -> bytes:
    """The content of the Zstandard file ``body``: decoded by the package, which
    checks the frame's checksum, and by ``zstd -d`` with the same result."""
    frame = zstandard.get_frame_parameters(body)
    assert frame.has_checksum, "each frame carries its content checksum"
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True)
    content = reader.read()
    tool = shutil.which("zstd")
    if tool is not None:
        done = subprocess.run(
            [tool, "-d", "-c", "-q"], input=body, capture_output=True, check=True, timeout=60
        )
        assert done.stdout == content, "zstd reads the same bytes"
    return content
