"""Which formats a kind offers: the catalogue of format names, each kind's share
of it, and the default. Pure, no I/O.

What a kind *is* decides which files a job of it may ask for (one dataset of
rows fits every format; several datasets or a file fit only a bundle), so the
API, the OpenAPI document and the CLI read the answer here. How each format is
written (its encoding, container and content type) is the export engine's, in
``exportd/export/formats.py``.
"""

from __future__ import annotations

import importlib.util

from exportd.definitions.kinds import Dataset, Kind

# Every format a job may name, in the order the API lists them.
SUPPORTED_FORMATS: tuple[str, ...] = (
    "csv",
    "csv.gz",
    "jsonl",
    "jsonl.gz",
    "json",
    "zip",
    "xlsx",
    "parquet",
    "csv.zst",
    "jsonl.zst",
)
# The formats that need an optional extra, and the extra's name (pip install 'exportd[...]').
PARQUET_EXTRA = "exportd[parquet]"


def parquet_installed() -> bool:
    """Whether pyarrow, which writes parquet, can be imported (``exportd[parquet]``).
    Callers look it up on this module at each call, so tests can stand in for it."""
    return importlib.util.find_spec("pyarrow") is not None


def installed_formats() -> tuple[str, ...]:
    """``SUPPORTED_FORMATS`` that this installation can write: parquet only with its extra."""
    return tuple(f for f in SUPPORTED_FORMATS if f != "parquet" or parquet_installed())


def not_installed(fmt: str) -> str | None:
    """Why ``fmt`` cannot be written here (it needs an extra that is not installed), or
    None. The API, the CLI and the worker give this message."""
    if fmt == "parquet" and not parquet_installed():
        return (
            f"format 'parquet' needs the optional extra {PARQUET_EXTRA}, which is not "
            f"installed here: pip install '{PARQUET_EXTRA}'"
        )
    return None


def formats_of(kind: Kind) -> tuple[str, ...]:
    """The formats a job of ``kind`` may ask for: every one installed
    (``installed_formats``) for a kind of one dataset of rows (but parquet for a
    handler's rows); ``zip`` and ``xlsx`` (a sheet per dataset) for several datasets of rows; only
    ``zip`` for a kind that produces a file."""
    if any(d.output in ("bytes", "files") for d in kind.datasets):
        return ("zip",)
    if len(kind.datasets) > 1:
        return ("zip", "xlsx")
    if kind.datasets[0].handler is not None:
        # A handler's rows carry no column types to make a parquet schema of.
        return tuple(f for f in installed_formats() if f != "parquet")
    return installed_formats()


def default_format(formats: tuple[str, ...]) -> str:
    """The format a job gets when it names none, of those it may ask for (``formats_of``):
    ``csv``, as in the table's default, unless the kind only fits in another (a bundle:
    ``zip``). The API and the CLI both choose this way."""
    return "csv" if "csv" in formats else formats[0]


def writes_json(kind: Kind, dataset: Dataset) -> bool:
    """Whether some job of ``kind`` writes ``dataset``'s rows as JSON: as a JSON format
    of a kind of one dataset, or as a zip member of format ``jsonl``."""
    if dataset.output in ("bytes", "files"):
        return False
    if dataset.compiled is None and dataset.handler is None:
        return False
    return dataset.member_format == "jsonl" or "json" in formats_of(kind)
