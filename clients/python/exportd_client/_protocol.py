"""The HTTP API as requests to make and answers to read, without any I/O.

The sync and the async client (``_client``, ``_async_client``) differ only in
how they send: what they send and how they read the answer is here, once.
Routes, headers and shapes are the daemon's (docs/api.md, ``/v1/openapi.json``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from exportd_client._errors import (
    ApiError,
    BadRequest,
    Conflict,
    DuplicateJob,
    Gone,
    InvalidJob,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from exportd_client._models import Job, Kind, decode, timestamp
from exportd_client._tracing import trace_headers
from exportd_client._validation import job_problems

OWNER_HEADER = "X-Exportd-Owner"
# wait()'s polling: the first pause, its growth and its ceiling, in seconds.
POLL_FIRST = 0.25
POLL_GROWTH = 1.5
POLL_MAX = 5.0
# A page of GET /v1/jobs (the daemon allows 1 to 200).
PAGE_SIZE = 100
# What download() reads and writes at a time.
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Call:
    """One API request: ``path`` below the base URL, its query and JSON body."""

    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    body: dict[str, Any] | None = None


def headers(token: str, owner_scope: str | None) -> dict[str, str]:
    """The headers of every API request: the bearer token, the owner scope when
    the client has one, and the current span's trace context (``_tracing``)."""
    found = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if owner_scope is not None:
        found[OWNER_HEADER] = owner_scope
    found.update(trace_headers())
    return found


def job_path(job_id: uuid.UUID | str, suffix: str = "") -> str:
    # Quoted whole: an id is the caller's text until the daemon says it is a job.
    return f"/v1/jobs/{quote(str(job_id), safe='')}{suffix}"


def new_job(
    kind: str,
    params: Mapping[str, Any] | None,
    *,
    owner: str | None,
    format: str | None,
    priority: int | None,
    run_after: datetime | None,
    max_attempts: int | None,
    dedupe_key: str | None,
    options: Mapping[str, Any] | None,
) -> Call:
    """``POST /v1/jobs`` with the fields given (None: the daemon's default, or
    for ``owner`` the client's owner scope). InvalidJob, listing every problem,
    for what the daemon would refuse by the table's bounds alone."""
    problems = job_problems(
        owner=owner,
        kind=kind,
        params={} if params is None else dict(params),
        format=format,
        priority=priority,
        run_after=run_after,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        options=None if options is None else dict(options),
    )
    if problems:
        raise InvalidJob(problems)
    body: dict[str, Any] = {"kind": kind, "params": {} if params is None else dict(params)}
    for name, value in (
        ("owner", owner),
        ("format", format),
        ("priority", priority),
        ("max_attempts", max_attempts),
        ("dedupe_key", dedupe_key),
        ("options", None if options is None else dict(options)),
    ):
        if value is not None:
            body[name] = value
    if run_after is not None:
        body["run_after"] = run_after.astimezone(UTC).isoformat()
    return Call("POST", "/v1/jobs", body=body)


def list_call(
    *,
    owner: str | None,
    states: Iterable[str],
    kinds: Iterable[str],
    created_after: datetime | None,
    created_before: datetime | None,
    page_size: int,
    cursor: str | None,
) -> Call:
    """One page of ``GET /v1/jobs``: newest first, ``cursor`` the previous
    page's ``next_cursor`` (None: the first page)."""
    params = [("limit", str(page_size))]
    if owner is not None:
        params.append(("owner", owner))
    params.extend(("state", state) for state in states)
    params.extend(("kind", kind) for kind in kinds)
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None:
            params.append((name, value.astimezone(UTC).isoformat()))
    if cursor is not None:
        params.append(("cursor", cursor))
    return Call("GET", "/v1/jobs", params=params)


def body_of(content: bytes) -> dict[str, Any]:
    """An answer's JSON object; ``{}`` when the answer is not one (a proxy's page)."""
    try:
        found = json.loads(content)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _seconds(value: str | None) -> float | None:
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def error_for(
    status: int, body: dict[str, Any], header: Mapping[str, str], *, enqueue: bool = False
) -> ApiError | DuplicateJob:
    """The exception an error answer stands for. On ``POST /v1/jobs``
    (``enqueue``) a 409 ``duplicate`` is DuplicateJob with the live job."""
    code = str(body.get("error", "error"))
    message = str(body.get("message", f"HTTP {status}"))
    if status == 400:
        return BadRequest(status, code, message, body)
    if status == 401:
        return Unauthorized(status, code, message, body)
    if status == 404:
        return NotFound(status, code, message, body)
    if status == 409:
        if enqueue and code == "duplicate" and isinstance(body.get("job"), dict):
            return DuplicateJob(decode(Job, body["job"]))
        return Conflict(status, code, message, body)
    if status == 410:
        return Gone(status, code, message, body)
    retry_after = _seconds(header.get("Retry-After"))
    if status == 429:
        raw_at = body.get("retry_at")
        at = timestamp(raw_at) if isinstance(raw_at, str) else None
        return RateLimited(status, code, message, body, retry_after, at)
    if status == 503:
        return Unavailable(status, code, message, body, retry_after)
    return ApiError(status, code, message, body)


def job_of(body: dict[str, Any]) -> Job:
    return decode(Job, body)


def kinds_of(body: dict[str, Any]) -> list[Kind]:
    return [decode(Kind, kind) for kind in body.get("kinds", [])]


def next_pause(pause: float) -> float:
    """wait()'s next pause between two polls, in seconds."""
    return min(pause * POLL_GROWTH, POLL_MAX)


def event_id(payload: str) -> str | None:
    """The job id of an ``exportd_events`` notification (``{"id", "owner",
    "kind", "state"}``; owner and kind may be cut, the id never is)."""
    try:
        found = json.loads(payload)
    except ValueError:
        return None
    return str(found.get("id")) if isinstance(found, dict) else None


def outcome(job: Job) -> Job:
    """What ``wait`` gives for a finished job: the job when it completed, else
    ExportFailed with its error_kind."""
    from exportd_client._errors import ExportFailed

    if job.state != "completed":
        raise ExportFailed(job)
    return job
