"""Which formats a kind offers: the catalogue of format names, each kind's share
of it, and the default. Pure, no I/O.

What a kind *is* decides which files a job of it may ask for (one dataset of
rows fits every format; several datasets or a file fit only a bundle), so the
API, the OpenAPI document and the CLI read the answer here. How each format is
written (its encoding, container and content type) is the export engine's, in
``exportd/export/formats.py``.
"""

from __future__ import annotations

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
    "csv.zst",
    "jsonl.zst",
)


def formats_of(kind: Kind) -> tuple[str, ...]:
    """The formats a job of ``kind`` may ask for: every one for a kind of one dataset of
    rows; ``zip`` and ``xlsx`` (a sheet per dataset) for several datasets of rows; only
    ``zip`` for a kind that produces a file."""
    if any(d.output in ("bytes", "files") for d in kind.datasets):
        return ("zip",)
    if len(kind.datasets) > 1:
        return ("zip", "xlsx")
    return SUPPORTED_FORMATS


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
