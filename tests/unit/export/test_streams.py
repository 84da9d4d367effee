"""The byte streams between a dataset and the upload, fed in awkward chunks."""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import itertools
import json
import random
import zipfile
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from exportd.export.streams import BLOCK, CsvRecords, GzipStream, JsonArrayStream, ZipBundle


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    async def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def csv_of(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([["a", "b"], *rows])
    return out.getvalue().encode()


field = st.text(alphabet='ab,"\n\r é', max_size=8)


@settings(max_examples=300)
@given(
    rows=st.lists(st.lists(field, min_size=2, max_size=2), max_size=12),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_csv_records_are_counted_whatever_the_quotes_newlines_and_chunks(
    rows: list[list[str]], cuts: list[int]
) -> None:
    data = csv_of(rows)
    counter = CsvRecords(header=True)
    for piece in chunks(data, cuts):
        counter.feed(piece)
    assert counter.rows == len(rows)


@settings(max_examples=200)
@given(
    records=st.lists(
        st.dictionaries(st.text(max_size=3), st.text(max_size=5), max_size=3), max_size=8
    ),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_json_lines_become_one_array_whatever_the_chunks(
    records: list[dict[str, str]], cuts: list[int]
) -> None:
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    out = Collect()

    async def feed() -> None:
        stream = JsonArrayStream(out)
        for piece in chunks(lines, cuts):
            await stream.write(piece)
        await stream.close()

    asyncio.run(feed())
    assert json.loads(bytes(out.data)) == records


async def test_gzip_stream_is_a_gzip_file_written_block_by_block() -> None:
    data = b"".join(hashlib.sha256(str(i).encode()).hexdigest().encode() for i in range(60_000))
    out = Collect()
    stream = GzipStream(out)
    for start in range(0, len(data), 70_000):
        await stream.write(data[start : start + 70_000])
    await stream.close()
    assert gzip.decompress(bytes(out.data)) == data
    assert out.writes >= len(data) // BLOCK, "compressed output is passed on as it is made"


async def test_a_zip_bundles_members_carry_its_date_and_its_compression_level() -> None:
    rng = random.Random(7)
    text = "".join(f"{rng.randrange(10**9)},{rng.choice('abcdef') * 3}\n" for _ in range(50_000))
    made = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
    sizes = {}
    for level in (1, 9):
        out = Collect()
        bundle = ZipBundle(out, made, level=level)
        await bundle.add("rows.csv", text.encode())
        await bundle.close()
        with zipfile.ZipFile(io.BytesIO(bytes(out.data))) as archive:
            (info,) = archive.infolist()
            assert archive.read("rows.csv") == text.encode()
        assert info.date_time == (2026, 3, 14, 15, 9, 26)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.external_attr >> 16 == 0o644
        sizes[level] = info.compress_size
    assert sizes[9] < sizes[1], "each level is the bundle's, not zlib's default"


async def test_a_zip_bundle_is_streamed_and_records_each_member() -> None:
    out = Collect()
    bundle = ZipBundle(out)
    big = bytes(range(256)) * 10_000
    member = bundle.member("big.bin")
    for start in range(0, len(big), 300_000):
        await member.write(big[start : start + 300_000])
    stats = await member.close()
    empty = await bundle.add("empty.csv", b"")
    await bundle.close()
    assert (stats.name, stats.bytes, stats.sha256) == (
        "big.bin",
        len(big),
        hashlib.sha256(big).hexdigest(),
    )
    assert (empty.bytes, empty.sha256) == (0, hashlib.sha256(b"").hexdigest())
    with zipfile.ZipFile(io.BytesIO(bytes(out.data))) as archive:
        assert archive.namelist() == ["big.bin", "empty.csv"]
        assert archive.read("big.bin") == big
        assert archive.testzip() is None


class _Kept:
    def __init__(self) -> None:
        self.data = bytearray()
        self.largest = 0

    async def write(self, data: bytes) -> None:
        self.data += data
        self.largest = max(self.largest, len(data))


def test_one_write_of_several_blocks_comes_out_whole_in_blocks() -> None:
    """A row larger than a block (COPY hands a row over whole) is taken a block
    at a time: each stream passes on nothing much larger than a block, and the
    file is the same as from small writes."""
    record = b'{"n":2,"body":"' + bytes(random.Random(7).randbytes(3 * BLOCK + 5).hex(), "ascii")
    lines = b'{"n":1}\n' + record + b'"}\n{"n":3}\n'

    async def run() -> None:
        gz, arr, zipped = _Kept(), _Kept(), _Kept()
        g = GzipStream(gz)
        a = JsonArrayStream(arr)
        z = ZipBundle(zipped)
        m = z.member("rows.jsonl")
        for stream in (g, a, m):
            await stream.write(lines)
        await g.close()
        await a.close()
        await m.close()
        await z.close()
        assert gzip.decompress(gz.data) == lines
        assert [r["n"] for r in json.loads(arr.data)[::2]] == [1, 3]
        assert zipfile.ZipFile(io.BytesIO(zipped.data)).read("rows.jsonl") == lines
        assert arr.largest <= BLOCK + 16

    asyncio.run(run())


def test_csv_records_count_a_large_quoted_row_once() -> None:
    row = b'2,"' + b'a ""b""\nc' * (BLOCK // 4) + b'"\n'
    records = CsvRecords(header=True)
    records.feed(b"n,body\n1,x\n" + row + b"3,y\n")
    assert records.rows == 3
