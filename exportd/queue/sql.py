"""The SQL that ships with exportd: numbered migrations and named queries.

All SQL lives in ``.sql`` files under ``sql/`` (installed as ``exportd/sql``),
never in Python strings, so that it can be read, reviewed and tested as SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_NAME = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def sql_dir() -> Path:
    """The SQL folder: inside the installed package, or the source tree's."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "sql"
    if packaged.is_dir():
        return packaged
    return package.parent / "sql"


def parse_queries(text: str) -> dict[str, str]:
    """Split a file of ``-- name: x`` blocks into {name: sql}."""
    queries: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        name = match.group(1)
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        body = text[match.end() : end].strip()
        queries[name] = body.rstrip(";").strip()
    return queries


class Queries:
    """Named queries, looked up by attribute-free name: ``Q["claim"]``."""

    def __init__(self, queries: dict[str, str]) -> None:
        self._queries = queries

    def __getitem__(self, name: str) -> str:
        return self._queries[name]

    def names(self) -> list[str]:
        return sorted(self._queries)


@cache
def queries() -> Queries:
    return Queries(parse_queries((sql_dir() / "queries.sql").read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration, in version order; gaps and duplicates are errors."""
    found: list[Migration] = []
    for path in sorted((sql_dir() / "migrations").glob("*.sql")):
        match = _MIGRATION.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name!r} is not named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text("utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise ValueError(f"migrations must be numbered 1, 2, ...; found {migration.version}")
    return found
