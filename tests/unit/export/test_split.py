"""SplitSink cuts CSV and JSON Lines into parts at record boundaries, however the
stream is chunked, and repeats the CSV header at the start of every part."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exportd.export.split import PartSink, SplitSink, count_ends, nth_end, part_name
from exportd.export.streams import BLOCK


class Part:
    def __init__(self, number: int, log: list[str]) -> None:
        self.number = number
        self.data = bytearray()
        self.closed = False
        self._log = log

    async def write(self, data: bytes) -> None:
        assert not self.closed
        self.data += data

    async def close(self) -> None:
        assert not self.closed
        self.closed = True
        self._log.append(f"close {self.number}")


class Parts:
    """An ``open_part`` that keeps every part, and what happened in which order."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.log: list[str] = []

    async def __call__(self, number: int) -> PartSink:
        assert number == len(self.parts) + 1, "parts are opened in order"
        assert all(p.closed for p in self.parts), "one part open at a time"
        self.log.append(f"open {number}")
        self.parts.append(Part(number, self.log))
        return self.parts[-1]


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def csv_of(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    return out.getvalue().encode()


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


async def split(
    data: bytes, cuts: list[int], split_rows: int, *, quoted: bool, header: bool
) -> tuple[list[bytes], list[int]]:
    parts = Parts()
    sink = SplitSink(parts, split_rows=split_rows, quoted=quoted, header=header)
    for chunk in chunks(data, cuts):
        await sink.write(chunk)
    rows = await sink.close()
    assert all(p.closed for p in parts.parts)
    return [bytes(p.data) for p in parts.parts], rows


AWKWARD = [
    ["plain", "1"],
    ["line one\nline two", "2"],
    ['"quoted", and, commas', "3"],
    ['ends with a quote"', "4\n"],
    ["\n\n", '""'],
    ["Grüße 🎉", ""],
    ["x" * 50, "y"],
]


@given(
    rows=st.lists(st.sampled_from(AWKWARD), max_size=25),
    split_rows=st.integers(1, 6),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
@settings(max_examples=300, deadline=None)
def test_csv_parts_hold_the_rows_in_order_each_with_the_header(
    rows: list[list[str]], split_rows: int, cuts: list[int]
) -> None:
    header = ["note", 'odd "name"\nwith a line break']
    data = csv_of(header, rows)
    parts, counts = asyncio.run(split(data, cuts, split_rows, quoted=True, header=True))
    expected = [rows[i : i + split_rows] for i in range(0, len(rows), split_rows)] or [[]]
    assert [read_csv(p) for p in parts] == [[header, *chunk] for chunk in expected]
    assert counts == [len(chunk) for chunk in expected]


@given(
    count=st.integers(0, 30),
    split_rows=st.integers(1, 7),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
@settings(max_examples=200, deadline=None)
def test_json_lines_are_cut_at_every_newline(count: int, split_rows: int, cuts: list[int]) -> None:
    records = [{"n": n, "text": f'a "quote" and\nnewline {n}'} for n in range(count)]
    data = b"".join(json.dumps(r).encode() + b"\n" for r in records)
    parts, counts = asyncio.run(split(data, cuts, split_rows, quoted=False, header=False))
    got = [[json.loads(line) for line in p.decode().splitlines()] for p in parts]
    expected = [records[i : i + split_rows] for i in range(0, count, split_rows)] or [[]]
    assert got == expected
    assert counts == [len(chunk) for chunk in expected]
    assert all(p.endswith(b"\n") for p in parts if p)


async def test_a_full_last_part_is_not_followed_by_an_empty_one() -> None:
    data = csv_of(["n"], [[str(n)] for n in range(4)])
    parts = Parts()
    sink = SplitSink(parts, split_rows=2, quoted=True, header=True)
    await sink.write(data)
    assert parts.log == ["open 1", "close 1", "open 2"]
    assert await sink.close() == [2, 2]
    assert parts.log == ["open 1", "close 1", "open 2", "close 2"]
    assert [bytes(p.data) for p in parts.parts] == [b"n\n0\n1\n", b"n\n2\n3\n"]


async def test_an_empty_stream_is_one_empty_part_and_a_header_alone_one_part() -> None:
    assert await split(b"", [], 3, quoted=True, header=True) == ([b""], [0])
    assert await split(b"a,b\n", [1, 2], 1, quoted=True, header=True) == ([b"a,b\n"], [0])


async def test_one_row_per_part() -> None:
    data = csv_of(["n", "t"], [["1", "x\ny"], ["2", ""], ["3", '"']])
    parts, counts = await split(data, [5, 9, 13], 1, quoted=True, header=True)
    assert counts == [1, 1, 1]
    assert parts == [b'n,t\n1,"x\ny"\n', b"n,t\n2,\n", b'n,t\n3,""""\n']


async def test_a_last_record_without_a_newline_is_counted() -> None:
    parts, counts = await split(b'{"a":1}\n{"a":2}', [3], 1, quoted=False, header=False)
    assert (parts, counts) == ([b'{"a":1}\n', b'{"a":2}'], [1, 1])


async def test_a_write_larger_than_a_block_is_cut_exactly() -> None:
    big = "z" * (BLOCK + 10)
    rows = [["1", big], ["2", f"a\n{big}"], ["3", "c"]]
    data = csv_of(["n", "text"], rows)
    parts, counts = await split(data, [], 2, quoted=True, header=True)
    assert counts == [2, 1]
    assert parts == [csv_of(["n", "text"], rows[:2]), csv_of(["n", "text"], rows[2:])]


def test_record_ends_are_counted_outside_quotes_only() -> None:
    assert count_ends(b'a,"x\ny"\nb\n', quoted=True, inside=False) == (2, False)
    assert count_ends(b'a,"x\n', quoted=True, inside=False) == (0, True)
    assert count_ends(b'y"\n', quoted=True, inside=True) == (1, False)
    assert count_ends(b'"\n"\n', quoted=False, inside=False) == (2, False)
    assert nth_end(b'a,"x\ny"\nb\n', 2, quoted=True, inside=False) == 9
    assert nth_end(b'a,"x\ny"\nb\n', 3, quoted=True, inside=False) == -1
    assert nth_end(b"x\ny\n", 1, quoted=True, inside=True) == -1


def test_part_names_have_four_digits_or_more() -> None:
    assert part_name("orders", 1, "csv") == "orders-0001.csv"
    assert part_name("orders", 12345, ".jsonl") == "orders-12345.jsonl"
    with pytest.raises(ValueError, match="from 1"):
        part_name("orders", 0, "csv")
    with pytest.raises(ValueError, match="at least 1"):
        SplitSink(Parts(), split_rows=0, quoted=True, header=True)
