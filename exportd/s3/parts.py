"""Multipart arithmetic: part sizes and the memory they cost. Pure, no I/O.

S3 caps one multipart upload at 10,000 parts of 5 MiB to 5 GiB each (the last
part may be smaller). The part size is fixed for the whole upload because
Cloudflare R2 requires every part but the last to have the same size, so it
must be chosen up front from the largest object an export may produce.
"""

from __future__ import annotations

from exportd.errors import ErrorKind, ExportError

MIB = 1024 * 1024
GIB = 1024 * MIB

MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * GIB
MAX_PARTS = 10_000


def _format_bytes(n: int) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def choose_part_size(max_export_bytes: int, configured: int | None = None) -> int:
    """The part size for objects of up to ``max_export_bytes``.

    Without ``configured``: the smallest whole number of MiB, at least 5 MiB,
    such that ``MAX_PARTS`` parts hold ``max_export_bytes``. Small parts keep
    the memory per upload low; whole MiB keep the number readable in logs.
    With ``configured``: that size, checked against S3's limits.
    """
    if max_export_bytes < 0:
        raise ValueError(f"max_export_bytes must not be negative, got {max_export_bytes}")
    if configured is not None:
        if not MIN_PART_SIZE <= configured <= MAX_PART_SIZE:
            raise ValueError(
                f"part size {_format_bytes(configured)} is outside S3's limits "
                f"({_format_bytes(MIN_PART_SIZE)} to {_format_bytes(MAX_PART_SIZE)})"
            )
        if configured * MAX_PARTS < max_export_bytes:
            raise ValueError(
                f"part size {_format_bytes(configured)} is too small: {MAX_PARTS:,} parts hold "
                f"{_format_bytes(configured * MAX_PARTS)}, less than the maximum export size "
                f"{_format_bytes(max_export_bytes)}; raise EXPORTD_S3_PART_SIZE to at least "
                f"{_format_bytes(_smallest_mib(max_export_bytes))} or leave it unset"
            )
        return configured
    size = _smallest_mib(max_export_bytes)
    if size > MAX_PART_SIZE:
        raise ValueError(
            f"maximum export size {_format_bytes(max_export_bytes)} exceeds what S3 can store "
            f"in one object ({MAX_PARTS:,} parts of {_format_bytes(MAX_PART_SIZE)})"
        )
    return size


def _smallest_mib(max_export_bytes: int) -> int:
    per_part = -(-max_export_bytes // MAX_PARTS)  # ceiling division
    mib = -(-per_part // MIB)
    return max(mib * MIB, MIN_PART_SIZE)


def upload_memory_bound(part_size: int, parts_in_flight: int) -> int:
    """Estimated peak buffer memory of one upload, in bytes.

    Each part in flight holds its own buffer until S3 acknowledges it, and the
    producer fills one more part meanwhile. Excludes the HTTP layer's copies.
    """
    return part_size * (parts_in_flight + 1)


def size_refusal(
    size: int,
    part_size: int,
    max_bytes: int | None,
    max_bytes_source: str,
    max_parts: int = MAX_PARTS,
) -> ExportError | None:
    """The ``too_large`` error of an object grown to ``size`` bytes, or None while it
    fits in ``max_parts`` parts of ``part_size`` bytes and in ``max_bytes`` (None: no
    such limit), the limit set by ``max_bytes_source`` (a setting's name)."""
    parts_limit = max_parts * part_size
    if size > parts_limit:
        return ExportError(
            ErrorKind.TOO_LARGE,
            f"export is larger than the limit of {parts_limit:,} bytes "
            f"({max_parts:,} parts of {part_size:,} bytes); raise "
            "EXPORTD_S3_MAX_EXPORT_BYTES (the part size follows it) or set a "
            "larger EXPORTD_S3_PART_SIZE",
        )
    if max_bytes is not None and size > max_bytes:
        return ExportError(
            ErrorKind.TOO_LARGE,
            f"export is larger than the limit of {max_bytes:,} bytes "
            f"({max_bytes_source}); narrow the export or raise the limit",
        )
    return None
