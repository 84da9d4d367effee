"""Enqueueing a job: the one path of ``POST /v1/jobs`` and ``exportd enqueue``.

The values a job may leave out get their defaults here, the same as the
table's column defaults (migration 0001; a test holds the two equal), and
a second live job with the same (owner, dedupe_key) is never inserted: the
caller gets the live one instead, whichever door the job came in by. A kind
with a quota (``exportd.quotas``) is counted and inserted under a lock of its
(kind, owner), so concurrent requests on any number of daemons see each
other's jobs and exactly ``max`` of them get in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from exportd import limits
from exportd.queue.sql import queries
from exportd.quotas import Quota, Standing, retry_at, seconds_until

DEFAULT_FORMAT = "csv"
DEFAULT_PRIORITY = 0
DEFAULT_MAX_ATTEMPTS = 5
# The table's bounds: priority is a smallint, max_attempts jobs_max_attempts_range.
PRIORITY_RANGE = (-32768, 32767)
MAX_ATTEMPTS_RANGE = (1, 100)
# A dedupe conflict with a job that ends at that very moment: insert again.
_TRIES = 3


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue; ``run_after`` None means now, ``dedupe_key`` None no dedupe."""

    owner: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    format: str = DEFAULT_FORMAT
    priority: int = DEFAULT_PRIORITY
    run_after: datetime | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    dedupe_key: str | None = None
    # The job's options document (exportd.jobs.options), as the caller wrote it.
    options: dict[str, Any] = field(default_factory=dict)
    # The caller's W3C trace context (exportd.jobs.trace_context), bounded by
    # exportd.tracing.context; None: no trace.
    trace_context: dict[str, str] | None = None


def problems(job: NewJob) -> list[tuple[str, str]]:
    """What the table or the driver would refuse in ``job``, as (field, why) pairs,
    found before anything is sent: identifiers bounded and free of control
    characters (``limits.identifier_problem``), numbers in their column's range.
    ``POST /v1/jobs`` (``api.requests.parse_new_job``) and ``exportd enqueue``
    both refuse with these, in this order.
    """
    found: list[tuple[str, str]] = []
    texts = [
        ("owner", job.owner, limits.OWNER_MAX_BYTES),
        ("kind", job.kind, limits.KIND_MAX_BYTES),
        ("dedupe_key", job.dedupe_key, limits.DEDUPE_KEY_MAX_BYTES),
    ]
    for name, text, max_bytes in texts:
        if text is not None and (why := limits.identifier_problem(text, max_bytes)):
            found.append((name, why))
    for name, value, (low, high) in (
        ("priority", job.priority, PRIORITY_RANGE),
        ("max_attempts", job.max_attempts, MAX_ATTEMPTS_RANGE),
    ):
        if not low <= value <= high:
            found.append((name, f"must be a whole number from {low} to {high}"))
    return found


@dataclass(frozen=True)
class Enqueued:
    """The new job's row (``created``), or the live duplicate's (not ``created``)."""

    row: asyncpg.Record
    created: bool


class JobRefused(Exception):
    """The table refused the job's values (a CHECK constraint, a value out of a
    column's range); ``cause`` is the driver's error."""

    def __init__(self, cause: asyncpg.PostgresError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class DuplicateBusy(Exception):
    """The live duplicate kept ending and starting again while the job was enqueued."""

    def __init__(self) -> None:
        super().__init__("the duplicate job kept changing state; retry")


class QuotaExceeded(Exception):
    """The owner has asked for ``quota.max`` jobs of the kind within ``quota.per``:
    ``retry_at`` (UTC) is when the job can be asked for again, ``retry_after``
    the whole seconds until then (rounded up, by the database's clock)."""

    def __init__(self, quota: Quota, retry_at: datetime, retry_after: int) -> None:
        super().__init__(f"quota exceeded; ask again at {retry_at.isoformat()}")
        self.quota = quota
        self.retry_at = retry_at
        self.retry_after = retry_after


async def enqueue(pool: asyncpg.Pool, job: NewJob, quota: Quota | None = None) -> Enqueued:
    """Insert ``job``, unless its owner has a live (pending or processing) job with
    the same ``dedupe_key``: then that job's row comes back, not ``created``.

    With a ``quota`` (the kind's), the owner's jobs of the kind are counted and
    the job inserted in one transaction under the (kind, owner) advisory lock;
    over the quota it raises QuotaExceeded, unless a live duplicate answers
    first (a dedupe hit is never refused). Raises JobRefused when the table
    refuses a value, DuplicateBusy when the live duplicate ended, and another
    took its place, on every try.
    """
    if quota is None:
        return await _insert(pool, job)
    q = queries()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(q["quota_lock"], job.kind, job.owner)
        refused = await quota_decision(conn, job.owner, job.kind, quota, None)
        if refused is None:
            return await _insert(conn, job)
        if job.dedupe_key is not None:
            existing = await conn.fetchrow(q["live_duplicate"], job.owner, job.dedupe_key)
            if existing is not None:
                return Enqueued(existing, created=False)
        when, now = refused
        raise QuotaExceeded(quota, when, seconds_until(when, now))


async def quota_decision(
    db: asyncpg.Pool | asyncpg.Connection,
    owner: str,
    kind: str,
    quota: Quota,
    job: tuple[datetime, uuid.UUID] | None,
) -> tuple[datetime, datetime] | None:
    """None when a job of ``owner`` and ``kind`` is within ``quota``; else when it
    can be asked for again, and the database's now.

    ``job`` is the decided job's (created_at, id); None for a job not inserted
    yet, decided as of now (``quotas.retry_at`` says the rule).
    """
    created, job_id = job if job is not None else (None, None)
    rows = await db.fetch(queries()["quota_history"], owner, kind, quota.per, created, job_id)
    if not rows:
        return None
    now: datetime = rows[0]["now"]
    history = [(r["created_at"], Standing(r["standing"])) for r in rows]
    when = retry_at(history, quota, now if created is None else created)
    return None if when is None else (when, now)


async def _insert(db: asyncpg.Pool | asyncpg.Connection, job: NewJob) -> Enqueued:
    """``enqueue``'s insert, or its live duplicate, on ``db`` (a pool, or the
    connection whose transaction holds the quota's lock)."""
    q = queries()
    args = (
        job.owner,
        job.kind,
        job.params,
        job.format,
        job.priority,
        job.run_after,
        job.max_attempts,
        job.dedupe_key,
        job.options,
        job.trace_context,
    )
    for _ in range(_TRIES):
        try:
            row = await db.fetchrow(q["enqueue"], *args)
        except (asyncpg.CheckViolationError, asyncpg.DataError) as exc:
            raise JobRefused(exc) from exc
        if row is not None:
            return Enqueued(row, created=True)
        existing = await db.fetchrow(q["live_duplicate"], job.owner, job.dedupe_key)
        if existing is not None:
            return Enqueued(existing, created=False)
    raise DuplicateBusy()
