"""Arrow's side of a parquet export: the schema of the file, and a block of CSV rows
(as ``parquet_copy`` writes them) made into a table of that schema. Runs in a thread.

Numbers and booleans are parsed by Arrow's CSV reader as their types; every other
column is read as text and converted here, column by column, with Arrow's vectorised
kernels: a value that would not convert exactly (an infinite date, a timestamp past
Arrow's range) fails the export naming its column and value (``Unrepresentable``),
never becomes a wrong value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from exportd.export.parquet import mapping
from exportd.export.parquet.mapping import ParquetColumn

_PARSED: dict[str, pa.DataType] = {
    mapping.INT16: pa.int16(),
    mapping.INT32: pa.int32(),
    mapping.INT64: pa.int64(),
    mapping.FLOAT32: pa.float32(),
    mapping.FLOAT64: pa.float64(),
    mapping.BOOL: pa.bool_(),
}
_INTEGER_TEXT = r"^-?[0-9]+$"
_ONE_DIMENSION = "a one-dimensional list"
# Hex digit (ASCII) -> its value; anything else maps to 0 and is never looked up.
_HEX = np.zeros(256, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i


class Unrepresentable(ValueError):
    """A value the column's parquet type cannot hold: ``column``, ``value`` (its text)."""

    def __init__(self, column: str, value: str, type_text: str) -> None:
        super().__init__(column, value, type_text)
        self.column, self.value, self.type_text = column, value, type_text


def arrow_type(column: ParquetColumn, zone: str) -> pa.DataType:
    """The Arrow type of ``column``; timestamptz columns carry the job's zone ``zone``
    (the values are UTC instants whatever it is)."""
    kind = column.kind
    if kind in _PARSED:
        return _PARSED[kind]
    if kind == mapping.DATE:
        return pa.date32()
    if kind == mapping.TIMESTAMP:
        return pa.timestamp("us")
    if kind == mapping.TIMESTAMPTZ:
        return pa.timestamp("us", tz=zone)
    if kind == mapping.BINARY:
        return pa.binary()
    if kind == mapping.UUID:
        return pa.uuid()
    if kind == mapping.JSON:
        return pa.json_(pa.string())
    if kind == mapping.ENUM:
        return pa.dictionary(pa.int32(), pa.string())
    if kind == mapping.LIST:
        element = ParquetColumn("item", column.element or mapping.STRING, "")
        return pa.list_(arrow_type(element, zone))
    return pa.string()


def schema(columns: Sequence[ParquetColumn], zone: str) -> pa.Schema:
    """The file's schema: a nullable field per column, its Postgres type in the field's
    metadata (``exportd.pg_type``), so that a text column says what it holds."""
    return pa.schema(
        [
            pa.field(c.name, arrow_type(c, zone), metadata={"exportd.pg_type": c.pg_type})
            for c in columns
        ]
    )


# Kinds whose values have a fixed width: their statistics (each row group's and page's
# min and max) cost a few bytes. A string's or a list's are copies of its largest
# values, four of them held while a group is written (200 MB for one 50 MB text),
# and Arrow leaves those over 4 KiB out of the file anyway.
_FIXED_WIDTH = frozenset(
    {*_PARSED, mapping.DATE, mapping.TIMESTAMP, mapping.TIMESTAMPTZ, mapping.UUID}
)


def statistics_columns(columns: Sequence[ParquetColumn]) -> list[str]:
    """The names of the columns whose statistics the file carries: those of a fixed
    width. A name with a dot is left out: Arrow reads these names as paths."""
    return [c.name for c in columns if c.kind in _FIXED_WIDTH and "." not in c.name]


def read_block(
    data: bytes | bytearray | memoryview, columns: Sequence[ParquetColumn], target: pa.Schema
) -> pa.Table:
    """The whole CSV rows in ``data`` as a table of ``target``. Raises Unrepresentable
    for a value a column's type cannot hold."""
    names = [f"c{i}" for i in range(len(columns))]
    read = pacsv.read_csv(
        pa.py_buffer(data),
        # One thread: the parse already runs beside Postgres formatting the next block,
        # and Arrow's own threads cost more memory (a buffer each) than they saved.
        # One Arrow block for the whole of ``data``: with newlines in values, Arrow
        # refuses a row that straddles its blocks (1 MiB by default), and a row may be
        # as large as EXPORTD_MAX_ROW_BYTES.
        read_options=pacsv.ReadOptions(
            column_names=names, use_threads=False, block_size=max(len(data), 1) + 1
        ),
        # A row of one NULL column is an empty line, and still a row.
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            column_types={
                n: _PARSED.get(c.kind, pa.string()) for n, c in zip(names, columns, strict=True)
            },
            null_values=[""],
            strings_can_be_null=True,
            # COPY writes an empty string as "" and a NULL as nothing at all.
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    arrays = [
        _convert(read.column(i).combine_chunks(), c, target.field(i).type)
        for i, c in enumerate(columns)
    ]
    return pa.Table.from_arrays(arrays, schema=target)


def _convert(text: pa.Array, column: ParquetColumn, to: pa.DataType) -> pa.Array:
    kind = column.kind
    if kind in _PARSED or kind == mapping.STRING:
        return text
    if kind in (mapping.DATE, mapping.TIMESTAMP, mapping.TIMESTAMPTZ):
        _integers_only(text, column, str(to))
        storage = pa.int32() if kind == mapping.DATE else pa.int64()
        return pc.cast(text, storage).view(to)
    if kind == mapping.BINARY:
        # bytea_output is pinned to hex: '\x' and two digits a byte.
        return _from_hex(pc.utf8_slice_codeunits(text, 2), pa.binary())
    if kind == mapping.UUID:
        digits = pc.replace_substring(text, "-", "")
        return pa.ExtensionArray.from_storage(to, _from_hex(digits, pa.binary(16)))
    if kind == mapping.JSON:
        return pa.ExtensionArray.from_storage(to, text)
    if kind == mapping.ENUM:
        return pc.dictionary_encode(text).cast(to)
    return _lists(text, column, to)


def _integers_only(text: pa.Array, column: ParquetColumn, type_text: str) -> None:
    ok = pc.match_substring_regex(text, _INTEGER_TEXT)
    bad = pc.and_kleene(pc.is_valid(text), pc.invert(ok))
    if pc.any(bad).as_py():
        first = pc.index(bad, True).as_py()
        raise Unrepresentable(column.name, str(text[first].as_py()), type_text)


def _from_hex(text: pa.Array, to: pa.DataType) -> pa.Array:
    """Hex digits (an even number per value) as the bytes they spell, vectorised: the
    values' digits lie end to end, so their bytes do too, at half the offsets. ``text``
    is a fresh kernel result (no slice offset); a null keeps its slot."""
    validity = text.buffers()[0] if text.null_count else None
    fixed = pa.types.is_fixed_size_binary(to)
    if fixed:
        # A fixed width needs bytes in a null's slot too.
        text = pc.fill_null(text, "00" * to.byte_width)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[: len(text) + 1]
    data = text.buffers()[2]
    digits = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    pairs = _HEX[digits[offsets[0] : offsets[-1]]].reshape(-1, 2)
    raw = pa.py_buffer(((pairs[:, 0] << 4) | pairs[:, 1]).astype(np.uint8).tobytes())
    if fixed:
        return pa.Array.from_buffers(to, len(text), [validity, raw])
    halves = pa.py_buffer(((offsets - offsets[0]) // 2).astype(np.int32).tobytes())
    return pa.Array.from_buffers(to, len(text), [validity, halves, raw])


def _lists(text: pa.Array, column: ParquetColumn, to: pa.DataType) -> pa.Array:
    """JSON arrays (``parquet_array``) as a list column. Refuses a list of lists."""
    if column.element != mapping.STRING:
        nested = pc.match_substring(text, "[[")  # no number's text holds a bracket
        if pc.any(nested).as_py():
            first = pc.index(nested, True).as_py()
            raise Unrepresentable(column.name, str(text[first].as_py()), _ONE_DIMENSION)
        return _number_lists(text, to)
    # Strings carry JSON's escapes; json.loads reads them (holding the GIL a while).
    values: list[object] = []
    for item in text.to_pylist():
        parsed = None if item is None else json.loads(item)
        if parsed is not None and any(isinstance(v, list) for v in parsed):
            raise Unrepresentable(column.name, item, _ONE_DIMENSION)
        values.append(parsed)
    return pa.array(values, to)


def _number_lists(text: pa.Array, to: pa.DataType) -> pa.Array:
    """JSON arrays of numbers, booleans and nulls (``[1,null,-0]``, ``[true]``;
    array_to_json writes no spaces) as a list column, a column at a time with Arrow's
    kernels: each element's text is cast as the CSV reader casts it, so that a float's
    ``-0`` keeps its sign and ``"NaN"`` and ``"Infinity"`` (JSON strings: array_to_json
    writes them quoted) are the floats they name."""
    inner = pc.utf8_slice_codeunits(text, 1, -1)
    empty = pc.equal(inner, "")
    # A null list or an empty one splits into nothing.
    parts = pc.split_pattern(pc.if_else(empty, pa.scalar(None, pa.string()), inner), ",")
    lengths = pc.fill_null(pc.list_value_length(parts), 0).to_numpy(zero_copy_only=False)
    offsets = np.zeros(len(text) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    items = pc.list_flatten(parts)
    items = pc.replace_substring(items, '"', "")
    items = pc.if_else(pc.equal(items, "null"), pa.scalar(None, pa.string()), items)
    values = pc.cast(items, to.value_type)
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=to, mask=pc.is_null(text))
