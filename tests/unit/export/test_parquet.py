"""The parquet writer's pure decisions and its sink, with real pyarrow and DuckDB
reading what it wrote: which column each type becomes, where whole CSV rows end,
row groups bounded by rows and by bytes."""

from __future__ import annotations

import io
import math
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exportd.definitions import offered_formats
from exportd.definitions.loader import definitions_from_text
from exportd.errors import ExportError
from exportd.export.formats import format_for
from exportd.export.parquet import arrow, mapping
from exportd.export.parquet.mapping import ColumnType, ParquetColumn, parquet_column
from exportd.export.parquet.writer import ParquetRows, last_row_end
from tests.support.definition_problems import problems_of


@pytest.mark.parametrize(
    ("column", "kind", "element"),
    [
        (ColumnType("int8"), mapping.INT64, None),
        (ColumnType("numeric", category="N"), mapping.STRING, None),  # any scale: its text
        (ColumnType("timestamptz", category="D"), mapping.TIMESTAMPTZ, None),
        (ColumnType("uuid", category="U"), mapping.UUID, None),
        (ColumnType("jsonb", category="U"), mapping.JSON, None),
        (ColumnType("mood", "public", "E"), mapping.ENUM, None),
        (
            ColumnType("_int4", category="A", element="int4", element_schema="pg_catalog"),
            "list",
            "int32",
        ),
        # Arrays of types a JSON array does not carry exactly: their Postgres text.
        (
            ColumnType("_date", category="A", element="date", element_schema="pg_catalog"),
            "string",
            None,
        ),
        (ColumnType("interval", category="T"), mapping.STRING, None),
        # A user's type named like a built-in one is not taken for it.
        (ColumnType("int8", "public", "U"), mapping.STRING, None),
    ],
)
def test_each_type_has_its_column(column: ColumnType, kind: str, element: str | None) -> None:
    chosen = parquet_column("c", column)
    assert (chosen.kind, chosen.element, chosen.pg_type) == (kind, element, column.name)


def test_a_row_ends_at_a_newline_outside_quotes() -> None:
    assert last_row_end(b"1,a\n2,b\n3,") == 8
    assert last_row_end(b'1,"a\nb"\n2,"c\n') == 8  # the last newline is inside quotes
    assert last_row_end(b'1,"x""\n') == 0
    assert last_row_end(b"") == 0


class Collected:
    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        self.data += data


COLUMNS = [
    ParquetColumn("n", mapping.INT32, "int4"),
    ParquetColumn("note", mapping.STRING, "text"),
]


async def write_rows(
    chunks: list[bytes], columns: list[ParquetColumn] = COLUMNS, **bounds: int
) -> bytes:
    out = Collected()
    rows = ParquetRows(out, "UTC", "zstd", "dataset 'd'", **bounds)
    seen: list[int] = []
    rows.begin(columns, seen.append)
    for chunk in chunks:
        await rows.write(chunk)
    assert await rows.close() == (seen[-1] if seen else 0)
    return bytes(out.data)


async def test_rows_cut_anywhere_arrive_whole_in_row_groups(tmp_path: Path) -> None:
    text = b"".join(b'%d,"line\nwith ""quotes"" %d"\n' % (n, n) for n in range(100))
    # Chunks cut inside quoted fields and rows; groups of at most 7 rows and ~64 bytes.
    chunks = [text[i : i + 13] for i in range(0, len(text), 13)]
    body = await write_rows(chunks, group_rows=7, group_bytes=64)
    file = pq.ParquetFile(io.BytesIO(body))
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    assert sum(sizes) == 100
    assert max(sizes) <= 7
    assert len(sizes) > 100 // 7  # the byte bound cut groups smaller still
    table = file.read()
    assert table.column("n").to_pylist() == list(range(100))
    assert table.column("note").to_pylist()[42] == 'line\nwith "quotes" 42'
    path = tmp_path / "rows.parquet"
    path.write_bytes(body)
    read = duckdb.connect().execute(f"SELECT count(*), sum(n) FROM read_parquet('{path}')")
    assert read.fetchall() == [(100, 4950)]


async def test_no_rows_is_a_file_with_its_schema() -> None:
    table = pq.read_table(io.BytesIO(await write_rows([])))
    assert (table.num_rows, table.column_names) == (0, ["n", "note"])


async def test_an_empty_string_is_not_a_null() -> None:
    table = pq.read_table(io.BytesIO(await write_rows([b'1,""\n2,\n'])))
    assert table.column("note").to_pylist() == ["", None]


async def test_a_null_in_a_single_column_is_a_row() -> None:
    # COPY writes a row of one NULL as an empty line: it is a row, never skipped.
    for column in (COLUMNS[1], COLUMNS[0], ParquetColumn("d", mapping.DATE, "date")):
        body = await write_rows([b"1\n\n\n2\n"], [column])
        assert pq.read_table(io.BytesIO(body)).num_rows == 4, column


async def test_a_float_list_keeps_the_sign_of_zero() -> None:
    # array_to_json writes -0 as an integer; the list's floats keep its sign.
    column = ParquetColumn("f", mapping.LIST, "_float8", mapping.FLOAT64)
    body = await write_rows([b'"[-0,1,-0.0,""NaN""]"\n'], [column])
    (values,) = pq.read_table(io.BytesIO(body)).column("f").to_pylist()
    assert [math.copysign(1.0, v) for v in values[:3]] == [-1.0, 1.0, -1.0]
    assert math.isnan(values[3])


async def test_a_row_larger_than_arrows_blocks_is_written() -> None:
    # Arrow's CSV reader parses 1 MiB blocks unless told otherwise; a row may be up to
    # EXPORTD_MAX_ROW_BYTES.
    big = "x\n" * (3 * 1024 * 1024)
    text = b'1,"%s"\n2,"%s"\n3,\n' % (big.encode(), big[:5].encode())
    for chunks in ([text], [text[:-5], text[-5:]]):  # a large write, whole or not
        body = await write_rows(chunks, group_bytes=64)
        notes = pq.read_table(io.BytesIO(body)).column("note").to_pylist()
        assert notes == [big, big[:5], None]


async def test_statistics_only_for_fixed_width_columns() -> None:
    # Min and max of a text column are copies of its largest values (four of a 50 MB
    # value: 200 MB), and Arrow drops them from the file when over 4 KiB anyway.
    body = await write_rows([b'1,"a"\n2,"b"\n'])
    group = pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0)
    n, note = group.column(0), group.column(1)
    assert n.is_stats_set
    assert (n.statistics.min, n.statistics.max) == (1, 2)
    assert not note.is_stats_set


@pytest.mark.parametrize(
    ("element", "csv", "want"),
    [
        (
            mapping.INT64,
            b'"[-9223372036854775808,null,9223372036854775807]"\n"[]"\n\n"[0]"\n',
            [[-9223372036854775808, None, 9223372036854775807], [], None, [0]],
        ),
        (mapping.INT16, b'"[-32768,32767]"\n', [[-32768, 32767]]),
        (mapping.BOOL, b'"[true,false,null]"\n"[]"\n', [[True, False, None], []]),
        (mapping.FLOAT32, b'"[0.1,-0,1e-45,""-Infinity""]"\n', [[0.1, -0.0, 1e-45, -math.inf]]),
        (
            mapping.STRING,
            b'"[""a,b"",""c\\""d"",null,"""",""x\\ny"",""\\u00e9"",""[[""]"\n"[]"\n',
            [["a,b", 'c"d', None, "", "x\ny", "\u00e9", "[["], []],
        ),
    ],
)
def test_lists_arrive_as_array_to_json_writes_them(
    element: str, csv: bytes, want: list[object]
) -> None:
    columns = [ParquetColumn("a", mapping.LIST, "_x", element)]
    target = arrow.schema(columns, "UTC")
    got = arrow.read_block(csv, columns, target).column("a")
    assert got.type == pa.list_(arrow.arrow_type(ParquetColumn("i", element, "x"), "UTC"))
    if element == mapping.FLOAT32:
        (values,) = got.to_pylist()
        assert values[0] == pytest.approx(0.1)
        assert [math.copysign(1.0, v) for v in values[1:]] == [-1.0, 1.0, -1.0]
        assert values[2] > 0
        assert values[3] == -math.inf
    else:
        assert got.to_pylist() == want


@pytest.mark.parametrize("element", [mapping.INT32, mapping.STRING])
def test_a_list_of_lists_is_refused_by_name(element: str) -> None:
    columns = [ParquetColumn("grid", mapping.LIST, "_x", element)]
    with pytest.raises(arrow.Unrepresentable) as caught:
        arrow.read_block(b'"[1]"\n"[[1,2],[3,4]]"\n', columns, arrow.schema(columns, "UTC"))
    assert (caught.value.column, caught.value.value) == ("grid", "[[1,2],[3,4]]")


def test_the_kind_chooses_the_codec() -> None:
    kinds = definitions_from_text('[kinds.k]\nquery = "SELECT 1"\nparquet_compression = "none"\n')
    assert kinds["k"].parquet_compression == "none"
    default = definitions_from_text('[kinds.k]\nquery = "SELECT 1"\n')
    assert default["k"].parquet_compression == "zstd"
    text = '[kinds.k]\nquery = "SELECT 1"\nparquet_compression = "lz4"\n'
    assert "parquet_compression must be one of zstd, snappy, none, got 'lz4'" in "\n".join(
        problems_of(text)
    )


def test_without_the_extra_parquet_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = definitions_from_text(
        '[kinds.k]\nquery = "SELECT 1"\n'
        '[kinds.z.datasets.a]\nquery = "SELECT 1"\nformat = "parquet"\n'
    )
    assert "parquet" in offered_formats.formats_of(kinds["k"])
    monkeypatch.setattr(offered_formats, "parquet_installed", lambda: False)
    assert "parquet" not in offered_formats.formats_of(kinds["k"])
    assert "parquet" not in offered_formats.installed_formats()
    for kind, fmt in ((kinds["k"], "parquet"), (kinds["z"], "zip")):
        with pytest.raises(ExportError) as caught:
            format_for(kind, fmt)
        assert caught.value.kind == "unsupported_format"
        assert "pip install 'exportd[parquet]'" in caught.value.message


def test_a_handler_kind_offers_no_parquet() -> None:
    kinds = definitions_from_text(
        '[kinds.h]\nhandler = "tests.support.custom_kinds:squares"\n'
        '[kinds.h.params.upto]\ntype = "integer"\n'
    )
    assert "parquet" not in offered_formats.formats_of(kinds["h"])
    with pytest.raises(ExportError, match="handler"):
        format_for(kinds["h"], "parquet")
