"""Output formats: what each job format is made of. Pure, no I/O.

A format is a row encoding (``csv`` or ``jsonl``, both produced by Postgres
where the rows come from SQL), optionally inside a container: gzip, a JSON
array, or a zip bundle holding one member per dataset and a manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from exportd.definitions.kinds import Dataset, Kind
from exportd.errors import ErrorKind, ExportError


class Container(StrEnum):
    PLAIN = "plain"
    GZIP = "gzip"
    JSON_ARRAY = "json_array"
    ZIP = "zip"


@dataclass(frozen=True)
class Format:
    name: str
    encoding: str  # of the rows: "csv" or "jsonl"; a zip's members follow their dataset
    container: Container
    content_type: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("csv", "csv", Container.PLAIN, "text/csv; charset=utf-8"),
        Format("csv.gz", "csv", Container.GZIP, "application/gzip"),
        Format("jsonl", "jsonl", Container.PLAIN, "application/x-ndjson; charset=utf-8"),
        Format("jsonl.gz", "jsonl", Container.GZIP, "application/gzip"),
        Format("json", "jsonl", Container.JSON_ARRAY, "application/json; charset=utf-8"),
        Format("zip", "csv", Container.ZIP, "application/zip"),
    )
}
SUPPORTED_FORMATS = tuple(FORMATS)


def formats_of(kind: Kind) -> tuple[str, ...]:
    """The formats a job of ``kind`` may ask for: every one for a kind of one dataset of
    rows, only ``zip`` for several datasets or a file."""
    if len(kind.datasets) > 1 or kind.datasets[0].output == "bytes":
        return ("zip",)
    return SUPPORTED_FORMATS


def default_format(formats: tuple[str, ...]) -> str:
    """The format a job gets when it names none, of those it may ask for (``formats_of``):
    ``csv``, as in the table's default, unless the kind only fits in another (a bundle:
    ``zip``). The API and the CLI both choose this way."""
    return "csv" if "csv" in formats else formats[0]


def writes_json(kind: Kind, dataset: Dataset) -> bool:
    """Whether some job of ``kind`` writes ``dataset``'s rows as JSON: as a JSON format
    of a kind of one dataset, or as a zip member of format ``jsonl``."""
    if dataset.output == "bytes" or (dataset.compiled is None and dataset.handler is None):
        return False
    return dataset.member_format == "jsonl" or formats_of(kind) != ("zip",)


def format_for(kind: Kind, name: str) -> Format:
    """The format a job of ``kind`` asked for, or the permanent error saying why not."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ExportError(
            ErrorKind.UNSUPPORTED_FORMAT,
            f"format {name!r} is not supported (supported: {', '.join(SUPPORTED_FORMATS)})",
        )
    if fmt.container is Container.ZIP:
        return fmt
    if len(kind.datasets) > 1:
        names = ", ".join(d.name for d in kind.datasets)
        raise ExportError(
            ErrorKind.UNSUPPORTED_FORMAT,
            f"kind {kind.name!r} has {len(kind.datasets)} datasets ({names}); a {name} file "
            "holds one: ask for format zip",
        )
    dataset = kind.datasets[0]
    if dataset.output == "bytes":
        raise ExportError(
            ErrorKind.UNSUPPORTED_FORMAT,
            f"kind {kind.name!r} produces a .{dataset.extension} file, not rows; "
            "ask for format zip",
        )
    return fmt
