"""Which parquet column each Postgres column becomes. Pure, no I/O, no pyarrow.

The decision is made from the type as the prepared statement reports it, followed
down any domains (``ColumnType``), never from the values: the file's schema is
written before its first row. docs/formats.md has the whole table; the rules in
short: numbers, booleans, dates and timestamps get their own parquet types; text
stays text; values that may hold more than a fixed-width type (unconstrained
``numeric``, ``interval``, ranges, ...) are written as the exact text Postgres gives.
"""

from __future__ import annotations

from dataclasses import dataclass

# The Arrow type each kind of column gets (``arrow.arrow_type`` builds it).
INT16, INT32, INT64 = "int16", "int32", "int64"
FLOAT32, FLOAT64 = "float32", "float64"
BOOL, STRING, BINARY = "bool", "string", "binary"
DATE, TIMESTAMP, TIMESTAMPTZ = "date32", "timestamp", "timestamptz"
UUID, JSON, ENUM = "uuid", "json", "dictionary"
LIST = "list"

_SCALARS: dict[str, str] = {
    "int2": INT16,
    "int4": INT32,
    "int8": INT64,
    "oid": INT64,
    "float4": FLOAT32,
    "float8": FLOAT64,
    "bool": BOOL,
    "text": STRING,
    "varchar": STRING,
    "bpchar": STRING,
    "name": STRING,
    "bytea": BINARY,
    "date": DATE,
    "timestamp": TIMESTAMP,
    "timestamptz": TIMESTAMPTZ,
    "uuid": UUID,
    "json": JSON,
    "jsonb": JSON,
}
# Elements a list column takes: those JSON carries exactly (array_to_json).
_ELEMENTS: dict[str, str] = {
    "int2": INT16,
    "int4": INT32,
    "int8": INT64,
    "float4": FLOAT32,
    "float8": FLOAT64,
    "bool": BOOL,
    "text": STRING,
    "varchar": STRING,
    "bpchar": STRING,
    "name": STRING,
}
# The named SQL template each kind of column is written with (else column_plain).
_TEMPLATES: dict[str, str] = {
    DATE: "parquet_date",
    TIMESTAMP: "parquet_timestamp",
    TIMESTAMPTZ: "parquet_timestamptz",
    LIST: "parquet_array",
}
_ENUM_CATEGORY = "E"


@dataclass(frozen=True)
class ColumnType:
    """A result column's type as the catalog describes it (named query
    ``parquet_column_types``): the type under any domains, its category, and an
    array's element type (None for other types)."""

    name: str
    schema: str = "pg_catalog"
    category: str = "X"
    element: str | None = None
    element_schema: str | None = None


@dataclass(frozen=True)
class ParquetColumn:
    """One column of the file: its field name, its kind (one of the names above), an
    array's element kind, and the Postgres type it came from (kept in the field's
    metadata as ``exportd.pg_type``)."""

    name: str
    kind: str
    pg_type: str
    element: str | None = None

    @property
    def template(self) -> str:
        """The named SQL template writing the column (``parquet_*`` or ``column_plain``)."""
        return _TEMPLATES.get(self.kind, "column_plain")


def parquet_column(name: str, column: ColumnType) -> ParquetColumn:
    """The parquet column of a result column ``name`` of type ``column``. Types of a
    schema other than pg_catalog are known only as enums (dictionary strings); every
    other type is written as its Postgres text (a string column)."""
    builtin = column.schema == "pg_catalog"
    if builtin and column.name in _SCALARS:
        return ParquetColumn(name, _SCALARS[column.name], column.name)
    if column.category == _ENUM_CATEGORY:
        return ParquetColumn(name, ENUM, column.name)
    if column.element is not None and column.element_schema == "pg_catalog":
        element = _ELEMENTS.get(column.element)
        if element is not None:
            return ParquetColumn(name, LIST, column.name, element)
    return ParquetColumn(name, STRING, column.name)
