"""What the daemon answers, as typed records: a job, one of its runs, a kind.

Each model follows a schema of the daemon's OpenAPI document (``/v1/openapi.json``:
``Job``, ``Run``, and the items of ``GET /v1/kinds``); the client's tests compare
them field by field with a running daemon's document, so they cannot drift apart.
A field the schema does not require is ``None`` when the answer leaves it out.

Documents are decoded by the annotations below (``decode``), the same way
whether they come from the HTTP API or from a row the SQL helpers read back.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar, Union

# Postgres's infinity and -infinity (run_after may hold them), as to_jsonb writes
# them; the HTTP API writes them as the ends of Python's datetime already.
_INFINITIES = {
    "infinity": datetime.max.replace(tzinfo=UTC),
    "-infinity": datetime.min.replace(tzinfo=UTC),
}

TERMINAL_STATES = frozenset({"completed", "failed", "cancelled", "expired"})


@dataclasses.dataclass(frozen=True)
class Run:
    """One ended attempt of a job (the ``Run`` schema): which attempt, who ran it,
    how it ended (``outcome``) and the state it left the job in."""

    attempt: int
    finished_at: datetime
    outcome: str
    next_state: str
    worker_id: str | None = None
    started_at: datetime | None = None
    error_kind: str | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Job:
    """An export job (the ``Job`` schema; the columns of ``exportd.jobs``).

    ``download_url`` is set only on a completed job read over HTTP, ``runs`` and
    ``deliveries`` only by ``get`` and ``retry``. Timestamps are aware datetimes.
    """

    id: uuid.UUID
    owner: str
    kind: str
    params: dict[str, Any]
    format: str
    state: str
    created_at: datetime
    options: dict[str, Any] | None = None
    priority: int | None = None
    run_after: datetime | None = None
    max_attempts: int | None = None
    dedupe_key: str | None = None
    attempts: int | None = None
    progress: int | None = None
    rows_written: int | None = None
    bytes_written: int | None = None
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    updated_at: datetime | None = None
    object_key: str | None = None
    size_bytes: int | None = None
    row_count: int | None = None
    checksum_sha256: str | None = None
    filename: str | None = None
    error: str | None = None
    error_kind: str | None = None
    schedule_id: uuid.UUID | None = None
    # {"traceparent": ..., "tracestate": ...}: the trace of the request that asked for it.
    trace_context: dict[str, str] | None = None
    download_url: str | None = None
    download_url_expires_at: datetime | None = None
    runs: list[Run] | None = None
    deliveries: list[dict[str, Any]] | None = None

    @property
    def finished(self) -> bool:
        """Whether the job reached a state it leaves only on request (a retry)."""
        return self.state in TERMINAL_STATES


@dataclasses.dataclass(frozen=True)
class Kind:
    """An export definition as ``GET /v1/kinds`` lists it: its formats, the JSON
    Schema of its params and options, its default and locked options, its quota."""

    name: str
    formats: list[str]
    params_schema: dict[str, Any]
    description: str | None = None
    options: dict[str, Any] | None = None
    locked_options: list[str] | None = None
    labels: dict[str, str] | None = None
    options_schema: dict[str, Any] | None = None
    quota: dict[str, Any] | None = None
    paused: bool | None = None
    paused_all: bool | None = None
    paused_at: datetime | None = None
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class FieldProblem:
    """One problem with a request or a job: the field (``""``: the whole) and why."""

    field: str
    message: str


Model = TypeVar("Model", Run, Job, Kind)


def timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp with its offset (or ``infinity``/``-infinity``), aware."""
    if text in _INFINITIES:
        return _INFINITIES[text]
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _value(hint: Any, raw: Any) -> Any:
    """``raw`` (decoded JSON) as the annotation ``hint`` says."""
    if raw is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _value(inner[0], raw)
    if hint is datetime:
        return timestamp(raw)
    if hint is uuid.UUID:
        return uuid.UUID(str(raw))
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_value(item, value) for value in raw]
    if hint in (Run, Job, Kind):
        return decode(hint, raw)
    return raw


def decode(model: type[Model], document: dict[str, Any]) -> Model:
    """``document`` (a JSON object) as ``model``; keys the model does not know are
    left out (a newer daemon's fields), a required field missing raises TypeError."""
    hints = typing.get_type_hints(model)
    known = {f.name for f in dataclasses.fields(model)}
    values = {name: _value(hints[name], raw) for name, raw in document.items() if name in known}
    return model(**values)
