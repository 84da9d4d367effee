"""A files dataset's rows: one stored object each, checked against the allowed sources.

Its query returns a ``key`` column and, optionally, ``bucket``, ``path`` (the
member's path under the dataset's folder; the key by default), ``size`` (bytes) and
``sha256`` (hex) that the object is expected to have. Every row is read, in the
job's snapshot and up to ``EXPORTD_FILES_MAX_PER_JOB``, and every key checked
against the allowed sources before the first object is read: a job that names one
key outside them fails as ``access_denied`` having read none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from exportd.definitions.files_policy import files_folder
from exportd.definitions.kinds import Dataset, Kind
from exportd.errors import ErrorKind, ExportError

COLUMNS = ("key", "bucket", "path", "size", "sha256")
_INTEGERS = frozenset({"int2", "int4", "int8"})
_TEXTS = frozenset({"text", "varchar", "bpchar", "name", "citext"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
# What a cursor fetches at once: rows are small (a key, a path, two checks).
_PREFETCH = 500


@dataclass(frozen=True)
class FilesConfig:
    """The daemon's files settings (``EXPORTD_FILES_*``)."""

    sources: tuple[str, ...] = ()
    default_bucket: str | None = None
    max_per_job: int = 10_000


@dataclass(frozen=True)
class FileRow:
    """One object to bundle, and what its row says it should be."""

    bucket: str
    key: str
    path: str  # the member's path under the dataset's folder, as the data has it
    size: int | None = None
    sha256: str | None = None


def file_row(record: Mapping[str, object], default_bucket: str | None, where: str) -> FileRow:
    """The row ``record`` (``where`` names it in errors), or a ``query_error`` ExportError."""
    key = record.get("key")
    if not isinstance(key, str) or not key:
        raise ExportError(ErrorKind.QUERY_ERROR, f"{where}: key must be non-empty text")
    bucket = record.get("bucket") or default_bucket
    if not isinstance(bucket, str) or not bucket:
        raise ExportError(
            ErrorKind.QUERY_ERROR,
            f"{where}: no bucket (return a bucket column, or set EXPORTD_FILES_BUCKET "
            "or EXPORTD_FILES_SOURCES)",
        )
    path = record.get("path")
    if path is not None and not isinstance(path, str):
        raise ExportError(ErrorKind.QUERY_ERROR, f"{where}: path must be text")
    size = record.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ExportError(ErrorKind.QUERY_ERROR, f"{where}: size must be a whole number >= 0")
    digest = record.get("sha256")
    if digest is not None:
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest.lower()):
            raise ExportError(ErrorKind.QUERY_ERROR, f"{where}: sha256 must be 64 hex digits")
        digest = digest.lower()
    return FileRow(bucket, key, path or key, size, digest)


def check_file_columns(
    columns: Sequence[tuple[str, str]], what: str, *, types: bool = False
) -> None:
    """Raise ``query_error`` unless ``columns`` ((name, Postgres type name) pairs of a
    files query) are ``key`` and some of the optional ``COLUMNS``; with ``types``, also
    unless ``size`` is an integer and the others text (``exportd check``: every row of
    another type would fail the job)."""
    names = [name for name, _ in columns]
    unknown = [n for n in names if n not in COLUMNS]
    if "key" not in names or unknown or len(set(names)) != len(names):
        raise ExportError(
            ErrorKind.QUERY_ERROR,
            f"{what}: a files query returns the columns key and optionally "
            f"{', '.join(COLUMNS[1:])}, each once; it returns {', '.join(names) or 'none'}",
        )
    if not types:
        return
    for name, type_name in columns:
        wanted = _INTEGERS if name == "size" else _TEXTS
        if type_name not in wanted:
            raise ExportError(
                ErrorKind.QUERY_ERROR,
                f"{what}: column {name} is of type {type_name}; it must be "
                f"{'an integer (bigint)' if name == 'size' else 'text'}",
            )


def within(row: FileRow, source: str) -> bool:
    """Whether ``row``'s object lies under ``source`` (``bucket`` or ``bucket/prefix``;
    a prefix is a folder: ``uploads/receipts`` allows ``receipts/...``, not
    ``receipts-old/...``). A key with an empty, ``.`` or ``..`` segment lies nowhere:
    a store backed by a file system may resolve it outside its folder."""
    bucket, _, prefix = source.partition("/")
    if row.bucket != bucket or any(s in ("", ".", "..") for s in row.key.split("/")):
        return False
    if not prefix:
        return True
    return row.key.startswith(prefix if prefix.endswith("/") else prefix + "/")


def refused(row: FileRow, sources: Sequence[str], kind_sources: Sequence[str]) -> str | None:
    """Why ``row`` may not be read (None when it may): it must lie under one of the
    daemon's ``sources`` and, when the kind lists its own, one of ``kind_sources``."""
    if not sources:
        return "no source is allowed: EXPORTD_FILES_SOURCES is empty"
    if not any(within(row, s) for s in sources):
        return f"it lies outside EXPORTD_FILES_SOURCES ({' '.join(sources)})"
    if kind_sources and not any(within(row, s) for s in kind_sources):
        return f"it lies outside the kind's files_sources ({' '.join(kind_sources)})"
    return None


def check_sources(
    rows: Sequence[FileRow], sources: Sequence[str], kind_sources: Sequence[str], what: str
) -> None:
    """Raise ``access_denied`` naming the first row that may not be read."""
    for row in rows:
        reason = refused(row, sources, kind_sources)
        if reason is not None:
            raise ExportError(
                ErrorKind.ACCESS_DENIED,
                f"{what}: object {row.key!r} in bucket {row.bucket!r} may not be read: "
                f"{reason}; nothing was read",
            )


@dataclass(frozen=True)
class FilesPlan:
    """A files dataset's part of one bundle: its rows (checked), its folder in the zip
    and the kind's policy (``"fail"`` or ``"list"``)."""

    dataset: str
    folder: str
    rows: Sequence[FileRow]
    policy: str


async def plan_files(
    conn: asyncpg.Connection,
    kind: Kind,
    bind: Callable[[Dataset], str],
    config: FilesConfig,
) -> dict[str, FilesPlan]:
    """Every files dataset of ``kind`` (its statement from ``bind``) read in the
    connection's transaction and checked against the sources, by dataset name; raises
    ExportError (``access_denied`` naming the first key outside them) before any
    object is read."""
    plans: dict[str, FilesPlan] = {}
    most = config.max_per_job
    for dataset in kind.datasets:
        if dataset.output != "files":
            continue
        what = f"dataset {dataset.name!r} of kind {kind.name!r}"
        rows = await read_file_rows(conn, bind(dataset), most, config.default_bucket, what)
        most -= len(rows)
        plans[dataset.name] = FilesPlan(
            dataset.name, files_folder(dataset.name), rows, kind.missing_files
        )
    for plan in plans.values():
        what = f"dataset {plan.dataset!r} of kind {kind.name!r}"
        check_sources(plan.rows, config.sources, kind.files_sources, what)
    return plans


async def read_file_rows(
    conn: asyncpg.Connection, sql: str, most: int, default_bucket: str | None, what: str
) -> list[FileRow]:
    """Every row of the files query ``sql`` (in the connection's transaction), or an
    ExportError: ``query_error`` for a missing ``key`` column, an unknown column or a
    bad value, ``too_large`` past ``most`` rows."""
    statement = await conn.prepare(sql)
    check_file_columns([(a.name, a.type.name) for a in statement.get_attributes()], what)
    rows: list[FileRow] = []
    async for record in statement.cursor(prefetch=_PREFETCH):
        if len(rows) == most:
            raise ExportError(
                ErrorKind.TOO_LARGE,
                f"{what}: more than {most:,} objects (EXPORTD_FILES_MAX_PER_JOB); narrow "
                "the export or raise the limit",
            )
        rows.append(file_row(dict(record), default_bucket, f"{what}, row {len(rows) + 1}"))
    return rows
