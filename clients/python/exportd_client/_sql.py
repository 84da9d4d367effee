"""The transactional helpers' statements and the one enqueue flow they share.

The statements live in ``queries.sql`` (``-- name: x`` blocks) with ``:name``
placeholders, rendered here for each driver's paramstyle: asyncpg's ``$1``,
psycopg's ``%(name)s``, SQLAlchemy's own ``:name``. Values are always bound,
never written into a statement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

from exportd_client._errors import DuplicateJob, ExportdError, InvalidJob
from exportd_client._models import FieldProblem, Job, decode
from exportd_client._tracing import trace_context
from exportd_client._validation import job_problems

Style = Literal["asyncpg", "psycopg", "sqlalchemy"]

_NAME = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_]+)\b")
# A dedupe conflict with a job that ends at that very moment: insert again
# (the daemon's own enqueue does the same).
TRIES = 3


@cache
def statements() -> dict[str, str]:
    """The named statements of ``queries.sql``, comments left out."""
    text = resources.files("exportd_client").joinpath("queries.sql").read_text("utf-8")
    found: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        lines = text[match.end() : end].splitlines()
        body = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
        found[match.group(1)] = body.strip().rstrip(";")
    return found


@cache
def render(name: str, style: Style) -> tuple[str, tuple[str, ...]]:
    """Statement ``name`` in ``style``, and the order of its values (asyncpg's
    ``$n``; for the named styles, the names it uses)."""
    order: list[str] = []

    def place(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in order:
            order.append(key)
        if style == "asyncpg":
            return f"${order.index(key) + 1}"
        if style == "psycopg":
            return f"%({key})s"
        return f":{key}"

    return _PLACEHOLDER.sub(place, statements()[name]), tuple(order)


@dataclass(frozen=True)
class Insert:
    """One enqueue: the statement's name and its values (JSON documents as text)."""

    statement: str
    values: dict[str, Any]
    owner: str
    dedupe_key: str | None

    def duplicate_values(self) -> dict[str, Any]:
        return {"owner": self.owner, "dedupe_key": self.dedupe_key}


def prepare(
    owner: str,
    kind: str,
    params: Mapping[str, Any] | None,
    *,
    format: str | None,
    priority: int | None,
    run_after: datetime | None,
    max_attempts: int | None,
    dedupe_key: str | None,
    options: Mapping[str, Any] | None,
) -> Insert:
    """The insert of a new job, once every check passed (else InvalidJob listing
    every problem). The trace context of the current span is added when there
    is one (``_tracing``); otherwise the statement never names the column."""
    # Plain dicts from here on: any Mapping is taken (MappingProxyType, a
    # Pydantic model's dict view), and json.dumps writes only dicts.
    document: Any = {} if params is None else params
    if isinstance(document, Mapping):
        document = dict(document)
    if options is not None:
        options = dict(options)
    problems = job_problems(
        owner=owner,
        kind=kind,
        params=document,
        format=format,
        priority=priority,
        run_after=run_after,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        options=options,
    )
    if not isinstance(owner, str):
        problems.insert(0, FieldProblem("owner", "is required"))
    if problems:
        raise InvalidJob(problems)
    values: dict[str, Any] = {
        "owner": owner,
        "kind": kind,
        "params": json.dumps(document, ensure_ascii=False),
        "format": format,
        "priority": priority,
        "run_after": run_after,
        "max_attempts": max_attempts,
        "dedupe_key": dedupe_key,
        "options": None if options is None else json.dumps(options, ensure_ascii=False),
    }
    statement = "enqueue"
    traced = trace_context()
    if traced is not None:
        statement = "enqueue_traced"
        values["trace_context"] = json.dumps(traced)
    return Insert(statement, values, owner, dedupe_key)


def job_of(text: str) -> Job:
    """A job row as ``to_jsonb`` wrote it."""
    return decode(Job, json.loads(text))


def first_column(row: Any) -> str | None:
    """The ``job`` column of a row of any driver's shape (a tuple, a mapping, an
    asyncpg Record, a SQLAlchemy Row), or None for no row."""
    if row is None:
        return None
    if isinstance(row, Mapping):
        return str(row["job"])
    return str(row[0])


def duplicate(text: str | None) -> DuplicateJob | None:
    """The DuplicateJob to raise for the live job found, or None when it ended."""
    return None if text is None else DuplicateJob(job_of(text))


class DuplicateBusy(ExportdError):
    """The live duplicate kept ending and another taking its place; retry."""

    def __init__(self) -> None:
        super().__init__("the duplicate job kept changing state; retry")
