"""A dataset's rows as a job's options shape them: a projection over its statement.

When an option changes which columns are written, in which order, under which header,
or how a column's values are written (the formula guard, a decimal comma, big numbers
as JSON strings), the dataset's bound statement becomes the subquery of the named query
``projection``: ``SELECT <expression> AS <alias>, ... FROM (<statement>) AS t``. Each
expression is a named template (``column_*``) around the column's quoted name; names,
types and aliases come from preparing the statement (``columns.statement_columns``),
never from the dataset's text, which is never edited. Without such an option the
statement is written as it is, byte for byte as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from exportd.definitions.options.model import JobOptions
from exportd.export.columns import Column, choose_columns, quote_ident, statement_columns
from exportd.export.sql_text import fill, snippet, template

# The base types (in pg_catalog) each value option applies to.
DECIMAL_TYPES = frozenset({"numeric", "float4", "float8"})
# Text-category types ('S': text, varchar, char(n), name, citext, domains over them) get the
# formula guard. Enums (category 'E') do not: their labels are the schema's, not a
# user's, and a label such as '+1' or '-' is meant as written.
TEXT_CATEGORY = "S"
# xml is no text type ('U'), but its content may be bare text: '=1+1'::xml is valid.
GUARDED_TYPES = frozenset({"xml"})
_PADDED = "bpchar"


@dataclass(frozen=True)
class Shaping:
    """What a job's options ask of one dataset written in one encoding."""

    columns: tuple[str, ...] | None = None  # the names, in order; None: all
    labels: bool = False  # the kind's labels as column names (the CSV header)
    formula_guard: bool = False  # CSV: text columns neutralised (OWASP)
    decimal_comma: bool = False  # CSV: numeric, real and double with ',' as the mark
    big_numbers: bool = False  # JSON: bigints past 2^53 - 1, numerics past 15 digits as strings


def shaping_for(options: JobOptions, dataset: str, encoding: str) -> Shaping:
    """The shaping of ``dataset`` written as ``encoding`` (``csv``, ``jsonl``, or another
    format's, which gets the columns only). CSV options never apply to JSON, nor the
    JSON ones to CSV; labels head CSV columns and never become JSON keys."""
    columns = options.columns_for(dataset)
    if encoding == "csv":
        csv = options.csv
        return Shaping(columns, True, csv.formula_guard, csv.decimal_comma)
    if encoding == "jsonl":
        return Shaping(columns, big_numbers=options.json.big_numbers == "string")
    return Shaping(columns)


@dataclass(frozen=True)
class TypeFacts:
    """A column type as the options see it: its category (``pg_type.typcategory``; a
    domain's is its base type's) and the base type under any domains."""

    category: str
    base_name: str
    base_schema: str = "pg_catalog"

    def is_builtin(self, names: frozenset[str] | str) -> bool:
        wanted = frozenset({names}) if isinstance(names, str) else names
        return self.base_schema == "pg_catalog" and self.base_name in wanted


def value_template(facts: TypeFacts, shaping: Shaping) -> str | None:
    """The named template writing a column of type ``facts`` as ``shaping`` asks, or None
    when its values are written as they are."""
    if shaping.formula_guard and (
        facts.category == TEXT_CATEGORY or facts.is_builtin(GUARDED_TYPES)
    ):
        return "column_formula_guard"
    if shaping.decimal_comma and facts.is_builtin(DECIMAL_TYPES):
        return "column_decimal_comma"
    if shaping.big_numbers and facts.is_builtin("int8"):
        return "column_json_big_int"
    if shaping.big_numbers and facts.is_builtin("numeric"):
        return "column_json_big_numeric"
    return None


def column_expression(column: Column, facts: TypeFacts, shaping: Shaping) -> str:
    """The SQL expression writing ``column`` (of the subquery ``t``) as ``shaping`` asks:
    a ``column_*`` named template around ``t.<quoted name>``."""
    ref = "t." + quote_ident(column.name)
    template = value_template(facts, shaping)
    if template == "column_formula_guard":
        # The guard works on the column's text; char(n) keeps its padding.
        as_text = "column_text_padded" if facts.is_builtin(_PADDED) else "column_text"
        ref = fill(snippet(as_text), {"column": ref})
    return fill(snippet(template or "column_plain"), {"column": ref})


def projection_sql(
    sql: str, columns: Sequence[Column], facts: Mapping[int, TypeFacts], shaping: Shaping
) -> str | None:
    """The projection of ``sql`` onto ``columns`` (chosen, in order) as ``shaping`` asks,
    or None when it would write the statement's own columns unchanged."""
    expressions: list[str] = []
    changed = shaping.columns is not None
    for column in columns:
        # A type the catalog did not describe is written as it is.
        known = facts.get(column.type_oid, TypeFacts("X", column.type_name, column.type_schema))
        alias = column.label if shaping.labels else column.name
        changed = changed or alias != column.name or value_template(known, shaping) is not None
        expressions.append(f"{column_expression(column, known, shaping)} AS {quote_ident(alias)}")
    if not changed:
        return None
    return fill(template("projection"), {"columns": ",\n       ".join(expressions), "dataset": sql})


async def type_facts(conn: asyncpg.Connection, oids: Sequence[int]) -> dict[int, TypeFacts]:
    """The facts of each type in ``oids`` (named query ``column_types``)."""
    rows = await conn.fetch(template("column_types"), list(set(oids)))
    return {
        row["oid"]: TypeFacts(str(row["category"]), row["base_name"], row["base_schema"])
        for row in rows
    }


def _asks_for_projection(shaping: Shaping, labels: Mapping[str, str]) -> bool:
    return (
        shaping.columns is not None
        or (shaping.labels and bool(labels))
        or shaping.formula_guard
        or shaping.decimal_comma
        or shaping.big_numbers
    )


async def project(
    conn: asyncpg.Connection,
    sql: str,
    shaping: Shaping,
    labels: Mapping[str, str],
    what: str,
) -> str:
    """The statement that writes the rows of ``sql`` (a dataset's bound statement) as
    ``shaping`` asks, with ``labels`` (column name -> header); ``sql`` itself when
    nothing changes. Prepares ``sql`` (nothing runs). Raises InvalidParams
    (``options.columns``) naming ``what`` and the columns it has for an unknown column."""
    if not _asks_for_projection(shaping, labels):
        return sql
    available = await statement_columns(conn, sql)
    chosen = choose_columns(available, shaping.columns, labels, what)
    facts = await type_facts(conn, [column.type_oid for column in chosen]) if chosen else {}
    return projection_sql(sql, chosen, facts, shaping) or sql
