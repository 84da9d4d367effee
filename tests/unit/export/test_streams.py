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

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from exportd.export.streams import BLOCK, CsvRecords, GzipStream, JsonArrayStream, ZstdStream
from exportd.export.zip_stream import ZipBundle


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


@pytest.mark.parametrize("threads", [0, 1, 2])
async def test_zstd_stream_is_one_zstd_frame_written_block_by_block(threads: int) -> None:
    # 19 MB: more than zstd's workers hold at once, so output must come before the end.
    data = b"".join(hashlib.sha256(str(i).encode()).hexdigest().encode() for i in range(300_000))
    out = Collect()
    stream = ZstdStream(out, threads=threads)
    for start in range(0, len(data), 700_000):
        await stream.write(data[start : start + 700_000])
    await stream.close()
    frame = bytes(out.data)
    params = zstandard.get_frame_parameters(frame)
    assert params.has_checksum, "a frame carries its content checksum, as zstd writes it"
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(frame), read_across_frames=True)
    assert reader.read() == data
    assert out.writes > 1, "compressed output is passed on as it is made"


async def test_an_empty_zstd_stream_is_a_frame_of_nothing() -> None:
    out = Collect()
    stream = ZstdStream(out)
    await stream.close()
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(bytes(out.data)))
    assert reader.read() == b""


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
        gz, zst, arr, zipped = _Kept(), _Kept(), _Kept(), _Kept()
        g = GzipStream(gz)
        zs = ZstdStream(zst)
        a = JsonArrayStream(arr)
        z = ZipBundle(zipped)
        m = z.member("rows.jsonl")
        for stream in (g, zs, a, m):
            await stream.write(lines)
        await g.close()
        await zs.close()
        await a.close()
        await m.close()
        await z.close()
        assert gzip.decompress(gz.data) == lines
        assert zstandard.ZstdDecompressor().stream_reader(io.BytesIO(zst.data)).read() == lines
        assert [r["n"] for r in json.loads(arr.data)[::2]] == [1, 3]
        assert zipfile.ZipFile(io.BytesIO(zipped.data)).read("rows.jsonl") == lines
        assert arr.largest <= BLOCK + 16

    asyncio.run(run())


def test_csv_records_count_a_large_quoted_row_once() -> None:
    row = b'2,"' + b'a ""b""\nc' * (BLOCK // 4) + b'"\n'
    records = CsvRecords(header=True)
    records.feed(b"n,body\n1,x\n" + row + b"3,y\n")
    assert records.rows == 3
