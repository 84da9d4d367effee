"""The HTTP API as requests to make and answers to read, without any I/O.

The sync and the async client (``_client``, ``_async_client``) differ only in
how they send: what they send and how they read the answer is here, once.
Routes, headers and shapes are the daemon's (docs/api.md, ``/v1/openapi.json``).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urljoin

from exportd_client._errors import (
    ApiError,
    BadRequest,
    Conflict,
    DuplicateJob,
    Gone,
    InvalidAnswer,
    InvalidJob,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from exportd_client._models import FieldProblem, Job, Kind, Model, decode, timestamp
from exportd_client._tracing import trace_headers
from exportd_client._validation import OWNER_MAX_BYTES, identifier_problem, job_problems

OWNER_HEADER = "X-Exportd-Owner"
# wait()'s polling: the first pause, its growth and its ceiling, in seconds.
POLL_FIRST = 0.25
POLL_GROWTH = 1.5
POLL_MAX = 5.0
# A page of GET /v1/jobs (the daemon allows 1 to 200).
PAGE_SIZE = 100
# What download() reads and writes at a time.
CHUNK_BYTES = 1024 * 1024
# wait(listen=...)'s longest sleep between two reads of the job, in seconds: a
# notification that never comes (a connection to another database, a pooler in
# transaction mode) costs at most this, never the whole timeout.
LISTEN_RECHECK = 15.0
# The redirects GET /v1/jobs/{id}/download may answer with.
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class Answer(Protocol):
    """What is read of an HTTP answer (an ``httpx.Response``)."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...


@dataclass(frozen=True)
class Call:
    """One API request: ``path`` below the base URL, its query and JSON body."""

    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    body: dict[str, Any] | None = None


def checked_scope(owner_scope: str | None) -> str | None:
    """A client's owner scope, checked as the daemon checks it (1 to 256 bytes
    of UTF-8, no control characters): InvalidJob (field ``owner_scope``) at
    once, rather than a 400 or a header error on every request."""
    if owner_scope is not None:
        if not isinstance(owner_scope, str):
            raise InvalidJob([FieldProblem("owner_scope", "must be a string")])
        if why := identifier_problem(owner_scope, OWNER_MAX_BYTES):
            raise InvalidJob([FieldProblem("owner_scope", why)])
    return owner_scope


def scope_query(owner_scope: str | None) -> list[tuple[str, str]]:
    """The owner scope as the ``owner_scope`` query parameter, for an owner that
    is not ASCII: HTTP header values are bytes that httpx sends as ASCII only,
    while a query is percent-encoded UTF-8 (docs/api.md takes either)."""
    if owner_scope is None or owner_scope.isascii():
        return []
    return [("owner_scope", owner_scope)]


def headers(token: str, owner_scope: str | None) -> dict[str, str]:
    """The headers of every API request: the bearer token, the owner scope when
    the client has one and it is ASCII (else ``scope_query``), and the current
    span's trace context (``_tracing``)."""
    found = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if owner_scope is not None and owner_scope.isascii():
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
    states: str | Iterable[str],
    kinds: str | Iterable[str],
    created_after: datetime | None,
    created_before: datetime | None,
    page_size: int,
    cursor: str | None,
) -> Call:
    """One page of ``GET /v1/jobs``: newest first, ``cursor`` the previous
    page's ``next_cursor`` (None: the first page); ``states`` and ``kinds``
    are strings or iterables of strings."""
    params = [("limit", str(page_size))]
    if owner is not None:
        params.append(("owner", owner))
    # A string is one value: iterated, "pending" would be seven states.
    params.extend(("state", state) for state in ([states] if isinstance(states, str) else states))
    params.extend(("kind", kind) for kind in ([kinds] if isinstance(kinds, str) else kinds))
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


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header in seconds from ``now`` (RFC 9110 10.2.3: whole
    seconds, or an HTTP-date, 0 once past); None when absent or neither."""
    if value is None:
        return None
    text = value.strip()
    # Digits only: "inf", "nan", "1e999" and "-5" are not delay-seconds.
    if text.isascii() and text.isdigit() and len(text) <= 12:
        return float(text)
    try:
        at = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (at - now).total_seconds())


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
            try:
                return DuplicateJob(decode(Job, body["job"]))
            except (TypeError, ValueError, KeyError, AttributeError):
                pass  # not the daemon's job document: the Conflict as answered
        return Conflict(status, code, message, body)
    if status == 410:
        return Gone(status, code, message, body)
    retry_after = retry_after_seconds(header.get("Retry-After"), datetime.now(UTC))
    if status == 429:
        raw_at = body.get("retry_at")
        at = None
        if isinstance(raw_at, str):
            with contextlib.suppress(ValueError):
                at = timestamp(raw_at)
        return RateLimited(status, code, message, body, retry_after, at)
    if status == 503:
        return Unavailable(status, code, message, body, retry_after)
    return ApiError(status, code, message, body)


def document(answer: Answer) -> dict[str, Any]:
    """The JSON object of a 2xx answer; InvalidAnswer for anything else (a 3xx,
    an empty body, a proxy's HTML page, a JSON array)."""
    status = answer.status_code
    if not 200 <= status < 300:
        raise InvalidAnswer(status, f"expected a JSON document, got HTTP {status}")
    try:
        found = json.loads(answer.content)
    except ValueError:
        size = len(answer.content)
        raise InvalidAnswer(status, f"the answer is not JSON ({size} bytes)") from None
    if not isinstance(found, dict):
        raise InvalidAnswer(status, "the answer is not a JSON object")
    return found


def _decoded(model: type[Model], status: int, found: Any) -> Model:
    if not isinstance(found, dict):
        raise InvalidAnswer(status, f"expected a {model.__name__} object")
    try:
        return decode(model, found)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InvalidAnswer(status, f"not a {model.__name__}: {exc}") from None


def job_of(answer: Answer) -> Job:
    """The job an answer carries; InvalidAnswer when it carries none."""
    return _decoded(Job, answer.status_code, document(answer))


def page_of(answer: Answer) -> tuple[list[Job], str | None]:
    """A page of ``GET /v1/jobs``: its jobs and the next page's cursor (None: last)."""
    found = document(answer)
    jobs, cursor = found.get("jobs"), found.get("next_cursor")
    if not isinstance(jobs, list) or not isinstance(cursor, str | None):
        raise InvalidAnswer(answer.status_code, "not a page of jobs")
    return [_decoded(Job, answer.status_code, job) for job in jobs], cursor or None


def kinds_of(answer: Answer) -> list[Kind]:
    found = document(answer).get("kinds", [])
    if not isinstance(found, list):
        raise InvalidAnswer(answer.status_code, "not a list of kinds")
    return [_decoded(Kind, answer.status_code, kind) for kind in found]


def location(status: int, url: str, header: str | None) -> str:
    """The presigned URL of a download redirect (``url`` the request's, against
    which a relative ``Location`` resolves); InvalidAnswer for any other answer."""
    if status not in REDIRECTS or not header:
        raise InvalidAnswer(status, f"expected a redirect to the export, got HTTP {status}")
    return urljoin(url, header)


def part_path(dest: str) -> str:
    """The temporary file a download to ``dest`` is written to, beside it (so
    that the final rename stays on one file system), hidden, its name bounded."""
    folder, _ = os.path.split(dest)
    return os.path.join(folder, f".exportd-{uuid.uuid4().hex}.part")


def wait_seconds(timeout: float) -> float:
    """``wait``'s timeout, checked: a number of seconds (0 or less: look once)."""
    if math.isnan(timeout):
        raise ValueError("wait's timeout must be a number of seconds, not NaN")
    return timeout


# Whether the listening connection already listens to exportd_events (a tuple
# row read through the helper's own cursor: see check_listener).
LISTENING = "SELECT EXISTS (SELECT FROM pg_listening_channels() AS c WHERE c = 'exportd_events')"


def tuple_row(_cursor: Any) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """psycopg's ``tuple_row``, without importing psycopg: the client reads its
    own rows as tuples whatever row factory the application's connection has
    (``class_row`` of the application's class could not even build one)."""
    return tuple


def check_listener(autocommit: bool, transaction_status: int) -> None:
    """ValueError unless a psycopg connection can hear notifications now: in
    autocommit mode and outside any transaction (psycopg's TransactionStatus
    IDLE is 0). LISTEN inside a transaction takes effect at its commit only,
    and a notification is delivered between transactions only."""
    if not autocommit:
        raise ValueError("wait(listen=...) needs a connection in autocommit mode")
    if transaction_status != 0:
        raise ValueError("wait(listen=...) needs a connection outside any transaction")


# What a proxy or the daemon answers while it cannot serve (502 Bad Gateway,
# 503 Unavailable, 504 Gateway Timeout): an outage, which wait outlasts.
OUTAGE_STATUSES = frozenset({502, 503, 504})


def outage(exc: ApiError) -> bool:
    """Whether an error answer says the API is down rather than anything of the job."""
    return exc.status in OUTAGE_STATUSES


def listen_slice(left: float) -> float:
    """How long ``wait(listen=...)`` sleeps before reading the job again."""
    return min(left, LISTEN_RECHECK)


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
