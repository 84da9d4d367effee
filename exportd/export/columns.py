"""A dataset's output columns: found by preparing its statement, chosen by the job's
``columns`` option, headed by the kind's labels.

The export never edits a dataset's SQL: a choice of columns is a projection over the
statement as a subquery (``SELECT "b", "a" FROM (<statement>) AS t``), whose names come
from the prepared statement itself and are quoted as identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from exportd.definitions.params.spec import InvalidParams, ParamError


@dataclass(frozen=True)
class Column:
    name: str  # as the statement names it
    label: str  # the header written for it (the kind's label, else the name)
    type_name: str  # Postgres's name of the type: int8, numeric, timestamptz, text, ...
    type_oid: int
    type_schema: str = "pg_catalog"  # where the type lives (a user's enum or domain)


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier: in double quotes, each inner one doubled.
    Raises ValueError for a NUL, which no identifier holds."""
    if "\x00" in name:
        raise ValueError("an identifier cannot hold NUL")
    return '"' + name.replace('"', '""') + '"'


async def statement_columns(conn: asyncpg.Connection, sql: str) -> list[tuple[str, int, str, str]]:
    """(name, type oid, type name, type schema) of each column ``sql`` returns, by
    preparing it (nothing runs)."""
    attributes = (await conn.prepare(sql)).get_attributes()
    return [(a.name, a.type.oid, a.type.name, a.type.schema) for a in attributes]


def choose_columns(
    available: Sequence[tuple[str, int, str, str]],
    wanted: Sequence[str] | None,
    labels: Mapping[str, str],
    what: str,
) -> list[Column]:
    """The columns to write, in order: all of ``available`` when ``wanted`` is None,
    else those named. Raises InvalidParams (``options.columns``) naming every unknown or
    ambiguous name and the columns the dataset has."""
    by_name: dict[str, list[tuple[str, int, str, str]]] = {}
    for entry in available:
        by_name.setdefault(entry[0], []).append(entry)
    names = [entry[0] for entry in available] if wanted is None else list(wanted)
    problems: list[ParamError] = []
    has = ", ".join(repr(entry[0]) for entry in available) or "none"
    for name in names if wanted is not None else ():
        if name not in by_name:
            problems.append(
                ParamError(
                    "options.columns",
                    "unknown_column",
                    f"options.columns: {what} has no column {name!r} (it has: {has})",
                )
            )
        elif len(by_name[name]) > 1:
            problems.append(
                ParamError(
                    "options.columns",
                    "ambiguous_column",
                    f"options.columns: {what} has more than one column named {name!r}; "
                    "the query must give each its own alias to choose it",
                )
            )
    if problems:
        raise InvalidParams(problems)
    chosen = list(available) if wanted is None else [by_name[name][0] for name in names]
    return [
        Column(name, labels.get(name, name), type_name, oid, schema)
        for name, oid, type_name, schema in chosen
    ]
