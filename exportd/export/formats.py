"""Output formats: what each job format is made of. Pure, no I/O.

Which format names exist and which a kind offers are definitions
(``exportd/definitions/offered_formats.py``); this module says how each is
written. A format is a row encoding (``csv`` or ``jsonl``, both produced by Postgres
where the rows come from SQL), optionally inside a container: gzip, zstd, a JSON
array, or a zip bundle holding one member per dataset and a manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from exportd.definitions import offered_formats
from exportd.definitions.kinds import Dataset, Kind
from exportd.definitions.offered_formats import SUPPORTED_FORMATS
from exportd.errors import ErrorKind, ExportError


class Container(StrEnum):
    PLAIN = "plain"
    GZIP = "gzip"
    # A Zstandard frame (RFC 8878), as the zstd tool writes it.
    ZSTD = "zstd"
    JSON_ARRAY = "json_array"
    ZIP = "zip"
    # An xlsx workbook: a zip of its own parts, a sheet (or several) per dataset.
    XLSX = "xlsx"


@dataclass(frozen=True)
class Format:
    name: str
    # Of the rows: "csv", "jsonl" or "xlsx"; a zip's members follow their dataset.
    encoding: str
    container: Container
    content_type: str


XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Keyed by the names of ``SUPPORTED_FORMATS``, one writer for each
# (tests/unit/definitions/test_rules.py).
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("csv", "csv", Container.PLAIN, "text/csv; charset=utf-8"),
        Format("csv.gz", "csv", Container.GZIP, "application/gzip"),
        Format("jsonl", "jsonl", Container.PLAIN, "application/x-ndjson; charset=utf-8"),
        Format("jsonl.gz", "jsonl", Container.GZIP, "application/gzip"),
        Format("json", "jsonl", Container.JSON_ARRAY, "application/json; charset=utf-8"),
        Format("zip", "csv", Container.ZIP, "application/zip"),
        Format("xlsx", "xlsx", Container.XLSX, XLSX_CONTENT_TYPE),
        # A typed, columnar file (exportd.export.parquet); needs exportd[parquet].
        Format("parquet", "parquet", Container.PLAIN, "application/vnd.apache.parquet"),
        Format("csv.zst", "csv", Container.ZSTD, "application/zstd"),
        Format("jsonl.zst", "jsonl", Container.ZSTD, "application/zstd"),
    )
}


def format_for(kind: Kind, name: str) -> Format:
    """The format a job of ``kind`` asked for, or the permanent error saying why not."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ExportError(
            ErrorKind.UNSUPPORTED_FORMAT,
            f"format {name!r} is not supported (supported: {', '.join(SUPPORTED_FORMATS)})",
        )
    missing = offered_formats.not_installed(name)
    if missing is not None:
        raise ExportError(ErrorKind.UNSUPPORTED_FORMAT, missing)
    if fmt.container is Container.ZIP:
        members = offered_formats.not_installed("parquet")
        if members and any(d.member_format == "parquet" for d in kind.datasets):
            raise ExportError(ErrorKind.UNSUPPORTED_FORMAT, f"kind {kind.name!r}: {members}")
        return fmt
    stored = [d.name for d in kind.datasets if d.output == "files"]
    if stored:
        raise ExportError(
            ErrorKind.UNSUPPORTED_FORMAT,
            f"kind {kind.name!r} bundles stored files ({', '.join(stored)}), which only a "
            f"zip can hold, not a {name} file: ask for format zip",
        )
    if fmt.container is Container.XLSX:
        return _workbook_of(kind, fmt)
    if len(kind.datasets) > 1:
        names = ", ".join(d.name for d in kind.datasets)
        raise ExportError(
            ErrorKind.UNSUPPORTED_FORMAT,
            f"kind {kind.name!r} has {len(kind.datasets)} datasets ({names}); a {name} file "
            "holds one: ask for format zip",
        )
    dataset = kind.datasets[0]
    if name == "parquet" and dataset.handler is not None:
        raise ExportError(
            ErrorKind.UNSUPPORTED_FORMAT,
            f"kind {kind.name!r} gets its rows from a Python handler, whose values carry "
            "no column types for a parquet schema; ask for csv or jsonl",
        )
    if dataset.output == "bytes":
        raise ExportError(
            ErrorKind.UNSUPPORTED_FORMAT,
            f"kind {kind.name!r} produces a .{dataset.extension} file, not rows; "
            "ask for format zip",
        )
    return fmt


def dataset_encoding(fmt: Format, dataset: Dataset) -> str:
    """How ``dataset``'s rows are written in ``fmt``: the format's encoding, or in a zip
    its member's."""
    return dataset.member_format if fmt.container is Container.ZIP else fmt.encoding


def _workbook_of(kind: Kind, fmt: Format) -> Format:
    """An xlsx holds a sheet per dataset of rows; a file (a bytes dataset) has no place
    in it."""
    files = [d for d in kind.datasets if d.output == "bytes"]
    if files:
        names = ", ".join(f"{d.name!r} (.{d.extension})" for d in files)
        raise ExportError(
            ErrorKind.UNSUPPORTED_FORMAT,
            f"kind {kind.name!r} produces files ({names}), which a workbook cannot hold; "
            "ask for format zip",
        )
    return fmt
