"""Writing a zip: each member whole or in numbered parts, then ``manifest.json``.

The zip streams (``zip_stream.ZipBundle``): one member open at a time, each part of a
split dataset a member of its own, opened when ``SplitSink`` reaches it. The
manifest is written last, so that it describes members that are all written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from exportd.definitions.kinds import Dataset
from exportd.definitions.options.model import CsvOptions
from exportd.export.csv_dialect import file_sink
from exportd.export.file_members import write_files
from exportd.export.file_rows import FilesPlan
from exportd.export.layout import (
    MANIFEST,
    ManifestHead,
    Member,
    manifest,
    member_entry,
    part_entries,
)
from exportd.export.member_names import MemberNames
from exportd.export.progress import Tracker
from exportd.export.split import PartSink, SplitSink, part_name
from exportd.export.streams import ByteSink, JsonArrayStream, MemberStats
from exportd.export.zip_stream import ZipBundle, ZipMember
from exportd.s3.client import S3Client

# Writes a dataset's rows, in an encoding ("csv" or "jsonl"), into a sink; its rows.
WriteDataset = Callable[[Dataset, str, ByteSink], Awaitable[int]]


@dataclass(frozen=True)
class BundleFiles:
    """The files datasets' plans (by dataset name) and the client that reads them."""

    plans: Mapping[str, FilesPlan]
    client: S3Client
    kind: str


async def write_bundle(
    out: ByteSink,
    members: Sequence[Member],
    write: WriteDataset,
    tracker: Tracker,
    head: ManifestHead,
    csv: CsvOptions,
    files: BundleFiles | None = None,
) -> int:
    """Write a zip of ``members`` and its manifest into ``out``; the rows of all
    members. ``csv``: the dialect of CSV members; each CSV file (a member, a part) gets
    its own BOM and line ends, and a header repeated in each part when it has one.
    A files dataset's objects are copied from ``files`` (``file_members``).
    Raises whatever ``write`` or ``out`` raise, the zip then discarded."""
    bundle = ZipBundle(out, head.generated_at)
    names = MemberNames((MANIFEST,))
    problems: list[dict[str, object]] = []
    try:
        entries: list[dict[str, object]] = []
        for member in members:
            if member.dataset.output == "files":
                assert files is not None, "a files dataset is planned before the bundle"
                what = f"dataset {member.dataset.name!r} of kind {files.kind!r}"
                plan = files.plans[member.dataset.name]
                entries += await write_files(
                    bundle, plan, files.client, names, tracker, problems, what
                )
                continue
            if member.split:
                entries += await _parts(bundle, member, write, tracker, head, csv)
                continue
            sink = bundle.member(names.claim("", f"{member.dataset.name}.{member.extension}"))
            file = file_sink(sink, _rows_encoding(member), csv)
            rows = await write(member.dataset, member.encoding, file)
            await file.close()
            stats = await sink.close()
            tracker.dataset_done(rows)
            entries.append(member_entry(member, stats, rows))
        document = manifest(head, entries, None if files is None else problems)
        await bundle.add(MANIFEST, document)
        await bundle.close()
    except BaseException:
        bundle.discard()
        raise
    return tracker.rows


async def _parts(
    bundle: ZipBundle,
    member: Member,
    write: WriteDataset,
    tracker: Tracker,
    head: ManifestHead,
    csv: CsvOptions,
) -> list[dict[str, object]]:
    assert head.split_rows is not None, "a member is split only under split_rows"
    stats: list[MemberStats] = []

    async def open_part(number: int) -> PartSink:
        name = part_name(member.dataset.name, number, member.extension)
        return _Part(bundle.member(name), member.array, stats, member.encoding, csv)

    quoted = member.encoding == "csv"
    splitter = SplitSink(
        open_part, split_rows=head.split_rows, quoted=quoted, header=quoted and csv.header
    )
    rows = await write(member.dataset, member.encoding, splitter)
    part_rows = await splitter.close()
    tracker.dataset_done(rows)
    return part_entries(member, stats, part_rows)


class _Part:
    """One part as a zip member, inside a JSON array of its own for ``json``; its
    member's size and checksum are added to ``stats`` when it closes."""

    def __init__(
        self,
        member: ZipMember,
        array: bool,
        stats: list[MemberStats],
        encoding: str,
        csv: CsvOptions,
    ) -> None:
        self._member = member
        self._array = JsonArrayStream(member) if array else None
        self._file = file_sink(self._array or member, encoding, csv)
        self._stats = stats

    async def write(self, data: bytes) -> None:
        await self._file.write(data)

    async def close(self) -> None:
        await self._file.close()
        if self._array is not None:
            await self._array.close()
        self._stats.append(await self._member.close())


def _rows_encoding(member: Member) -> str:
    """The member's encoding when it holds rows; "" for a handler's file."""
    return "" if member.dataset.output == "bytes" else member.encoding
