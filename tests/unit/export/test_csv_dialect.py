"""The CSV dialect: the COPY text, the checks of the options, the BOM and CRLF sink."""

from __future__ import annotations

import pytest

from exportd.definitions.options.model import CsvOptions
from exportd.export.csv_dialect import (
    BOM,
    copy_text,
    csv_file_sink,
    dialect_problems,
)
from exportd.queue.sql import queries


class Collect:
    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data


def test_the_default_dialect_is_copy_csv_with_a_header() -> None:
    before, after = queries()["copy_csv"].split("/* dataset */")
    assert copy_text("SELECT 1") == before + "SELECT 1" + after
    assert "(FORMAT csv, HEADER true)" in copy_text("SELECT 1")


def test_the_delimiter_and_null_are_string_constants() -> None:
    text = copy_text("SELECT 1", CsvOptions(delimiter="\t", header=False, null="it's \\N"))
    assert "HEADER false, DELIMITER E'\t', NULL E'it''s \\\\N')" in text


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (CsvOptions(delimiter=":"), "options.csv.delimiter"),
        (CsvOptions(line_terminator="\r"), "options.csv.line_terminator"),
        (CsvOptions(null="a,b"), "options.csv.null"),
        (CsvOptions(null='"'), "options.csv.null"),
        (CsvOptions(null="\n"), "options.csv.null"),
        (CsvOptions(decimal_comma=True), "options.csv.decimal_comma"),
    ],
)
def test_a_dialect_copy_cannot_write_is_refused(options: CsvOptions, field: str) -> None:
    assert [p.field for p in dialect_problems(options)] == [field]


def test_good_dialects_have_no_problems() -> None:
    assert dialect_problems(CsvOptions()) == []
    assert dialect_problems(CsvOptions(delimiter=";", decimal_comma=True, null="NULL")) == []


async def test_default_sink_passes_every_byte() -> None:
    out = Collect()
    sink = csv_file_sink(out, CsvOptions())
    await sink.write(b'a,"b\nc"\n')
    await sink.close()
    assert out.data == b'a,"b\nc"\n'


async def test_crlf_ends_records_only_and_carries_the_quote_state_across_writes() -> None:
    copy = b'id,t\n1,"one\nline ""q"" \r\nmore"\n2,\n3,"x"\n'
    want = b'id,t\r\n1,"one\nline ""q"" \r\nmore"\r\n2,\r\n3,"x"\r\n'
    for size in (1, 2, 3, 5, 7, len(copy)):
        out = Collect()
        sink = csv_file_sink(out, CsvOptions(line_terminator="\r\n"))
        for i in range(0, len(copy), size):
            await sink.write(copy[i : i + size])
        await sink.close()
        assert out.data == want, size


async def test_the_bom_comes_once_first_even_for_an_empty_file() -> None:
    out = Collect()
    sink = csv_file_sink(out, CsvOptions(bom=True))
    await sink.write(b"a\n")
    await sink.write(b"b\n")
    await sink.close()
    assert out.data == BOM + b"a\nb\n"
    empty = Collect()
    sink = csv_file_sink(empty, CsvOptions(bom=True))
    await sink.close()
    assert empty.data == BOM


async def test_a_large_write_is_transformed_a_block_at_a_time() -> None:
    from exportd.export.streams import BLOCK

    value = b'"' + b"x\n" * BLOCK + b'"'
    out = Collect()
    sink = csv_file_sink(out, CsvOptions(line_terminator="\r\n"))
    await sink.write(b"a\n" + value + b"\n")
    assert out.data == b"a\r\n" + value + b"\r\n"
