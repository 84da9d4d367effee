"""Writing a zip: each member whole or in numbered parts, then ``manifest.json``.

The zip streams (``streams.ZipBundle``): one member open at a time, each part of a
split dataset a member of its own, opened when ``SplitSink`` reaches it. The
manifest is written last, so that it describes members that are all written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from exportd.definitions.kinds import Dataset
from exportd.export.layout import (
    MANIFEST,
    ManifestHead,
    Member,
    manifest,
    member_entry,
    part_entries,
)
from exportd.export.progress import Tracker
from exportd.export.split import PartSink, SplitSink, part_name
from exportd.export.streams import ByteSink, JsonArrayStream, MemberStats, ZipBundle, ZipMember

# Writes a dataset's rows, in an encoding ("csv" or "jsonl"), into a sink; its rows.
WriteDataset = Callable[[Dataset, str, ByteSink], Awaitable[int]]


async def write_bundle(
    out: ByteSink,
    members: Sequence[Member],
    write: WriteDataset,
    tracker: Tracker,
    head: ManifestHead,
    *,
    csv_header: bool = True,
) -> int:
    """Write a zip of ``members`` and its manifest into ``out``; the rows of all
    members. ``csv_header``: a CSV stream starts with a header, repeated in each part.
    Raises whatever ``write`` or ``out`` raise, the zip then discarded."""
    bundle = ZipBundle(out, head.generated_at)
    try:
        entries: list[dict[str, object]] = []
        for member in members:
            if member.split:
                entries += await _parts(bundle, member, write, tracker, head, csv_header)
                continue
            sink = bundle.member(f"{member.dataset.name}.{member.extension}")
            rows = await write(member.dataset, member.encoding, sink)
            stats = await sink.close()
            tracker.dataset_done(rows)
            entries.append(member_entry(member, stats, rows))
        await bundle.add(MANIFEST, manifest(head, entries))
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
    csv_header: bool,
) -> list[dict[str, object]]:
    assert head.split_rows is not None, "a member is split only under split_rows"
    stats: list[MemberStats] = []

    async def open_part(number: int) -> PartSink:
        name = part_name(member.dataset.name, number, member.extension)
        return _Part(bundle.member(name), member.array, stats)

    csv = member.encoding == "csv"
    splitter = SplitSink(
        open_part, split_rows=head.split_rows, quoted=csv, header=csv and csv_header
    )
    rows = await write(member.dataset, member.encoding, splitter)
    part_rows = await splitter.close()
    tracker.dataset_done(rows)
    return part_entries(member, stats, part_rows)


class _Part:
    """One part as a zip member, inside a JSON array of its own for ``json``; its
    member's size and checksum are added to ``stats`` when it closes."""

    def __init__(self, member: ZipMember, array: bool, stats: list[MemberStats]) -> None:
        self._member = member
        self._array = JsonArrayStream(member) if array else None
        self._stats = stats

    async def write(self, data: bytes) -> None:
        await (self._array or self._member).write(data)

    async def close(self) -> None:
        if self._array is not None:
            await self._array.close()
        self._stats.append(await self._member.close())
