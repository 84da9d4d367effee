"""What a job's object holds: one file, or a zip of members, each whole or in
numbered parts (``split_rows``), and the manifest that lists them. Pure, no I/O.

A dataset is split when the job has ``split_rows`` and the dataset has more rows
than that (counted in the job's snapshot before anything is written, so the
object's name and type are known before it starts), or when its rows come from a
Python handler, whose rows cannot be counted in advance: with ``split_rows`` such
a dataset is always written in numbered parts, however few rows it yields. A file
a bytes handler produces is never split. A single-file format whose one dataset is
split becomes a zip (``orders.zip``, ``application/zip``) of its parts and a
manifest; each part is a plain file of the format's encoding (a ``csv.gz`` result
gives ``.csv`` parts, the zip being compressed already) and, for ``json``, each
part is a JSON array of its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from exportd.definitions.kinds import Dataset, Kind
from exportd.export.formats import FORMATS, Container, Format
from exportd.export.streams import MemberStats

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Member:
    """One dataset's place in a zip: whole (``<dataset>.<extension>``) or in parts
    (``<dataset>-0001.<extension>``, ...)."""

    dataset: Dataset
    encoding: str  # how its rows come from the source: "csv" or "jsonl"
    extension: str  # of its file or parts: csv, jsonl, json or a bytes dataset's own
    split: bool = False
    array: bool = False  # each part a JSON array (format json)


@dataclass(frozen=True)
class Layout:
    """The object a job writes: ``fmt`` names its extension and content type; with
    ``zipped``, it is a zip of ``members`` and a manifest."""

    fmt: Format
    zipped: bool
    members: tuple[Member, ...]


def wants_split(split_rows: int | None, dataset: Dataset, counted: int | None) -> bool:
    """Whether ``dataset`` is written in numbered parts. ``counted``: its rows, counted
    up to ``split_rows + 1`` (None where they cannot be counted: a handler)."""
    if split_rows is None or dataset.output in ("bytes", "files"):
        return False
    if dataset.compiled is None:
        return True  # a handler's rows: known only as they come
    return counted is not None and counted > split_rows


def layout(fmt: Format, kind: Kind, split: Mapping[str, bool]) -> Layout:
    """The object of a job of ``kind`` in ``fmt``, with the datasets ``split`` names
    (by dataset name, True to split) in numbered parts."""
    if fmt.container is Container.ZIP:
        members = tuple(
            Member(d, d.member_format, d.member_extension, split=split.get(d.name, False))
            for d in kind.datasets
        )
        return Layout(fmt, True, members)
    dataset = kind.datasets[0]
    if not split.get(dataset.name, False):
        return Layout(fmt, False, (Member(dataset, fmt.encoding, fmt.name),))
    array = fmt.container is Container.JSON_ARRAY
    member = Member(dataset, fmt.encoding, "json" if array else fmt.encoding, True, array)
    return Layout(FORMATS["zip"], True, (member,))


def member_entry(
    member: Member, stats: MemberStats, rows: int, part: int | None = None
) -> dict[str, object]:
    """A member's line in the manifest; a part's carries its number (from 1)."""
    entry: dict[str, object] = {
        "name": stats.name,
        "dataset": member.dataset.name,
        "format": member.extension,
        "rows": None if member.dataset.output == "bytes" else rows,
        "bytes": stats.bytes,
        "sha256": stats.sha256,
    }
    if part is not None:
        entry["part"] = part
    return entry


def part_entries(
    member: Member, stats: Sequence[MemberStats], rows: Sequence[int]
) -> list[dict[str, object]]:
    """The manifest lines of a split member's parts, in order."""
    if len(stats) != len(rows):
        raise ValueError(f"{len(stats)} parts written but {len(rows)} counted")
    return [
        member_entry(member, s, r, part=number)
        for number, (s, r) in enumerate(zip(stats, rows, strict=True), start=1)
    ]


@dataclass(frozen=True)
class ManifestHead:
    """What the manifest says of the job, before its members."""

    kind: str
    owner: str
    job_id: str
    params: Mapping[str, object]  # in their JSON form
    generated_at: datetime
    split_rows: int | None = None


def manifest(
    head: ManifestHead,
    members: list[dict[str, object]],
    file_problems: list[dict[str, object]] | None = None,
) -> bytes:
    """``manifest.json``: the job, then every member (and part) in the zip's order, then,
    for a kind with files datasets, the objects missing or changed (``file_problems``)."""
    document: dict[str, object] = {
        "kind": head.kind,
        "owner": head.owner,
        "job_id": head.job_id,
        "params": dict(head.params),
        "generated_at": head.generated_at.isoformat(),
    }
    if head.split_rows is not None:
        document["split_rows"] = head.split_rows
    document["members"] = members
    if file_problems is not None:
        document["file_problems"] = file_problems
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
