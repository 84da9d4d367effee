"""Enqueueing a job: the one path of ``POST /v1/jobs`` and ``exportd enqueue``.

The values a job may leave out get their defaults here, the same as the
table's column defaults (migration 0001; a test holds the two equal), and
a second live job with the same (owner, dedupe_key) is never inserted: the
caller gets the live one instead, whichever door the job came in by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from exportd import limits
from exportd.queue.sql import queries

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


def problems(job: NewJob) -> list[tuple[str, str]]:
    """What the table or the driver would refuse in ``job``, as (field, why) pairs,
    found before anything is sent: identifiers bounded and free of control
    characters (``limits.identifier_problem``), numbers in their column's range.
    ``POST /v1/jobs`` checks the same rules as it reads the body, field by field.
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
            found.append((name, f"must be from {low} to {high}"))
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


async def enqueue(pool: asyncpg.Pool, job: NewJob) -> Enqueued:
    """Insert ``job``, unless its owner has a live (pending or processing) job with
    the same ``dedupe_key``: then that job's row comes back, not ``created``.

    Raises JobRefused when the table refuses a value, DuplicateBusy when the
    live duplicate ended, and another took its place, on every try.
    """
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
    )
    for _ in range(_TRIES):
        try:
            row = await pool.fetchrow(q["enqueue"], *args)
        except (asyncpg.CheckViolationError, asyncpg.DataError) as exc:
            raise JobRefused(exc) from exc
        if row is not None:
            return Enqueued(row, created=True)
        existing = await pool.fetchrow(q["live_duplicate"], job.owner, job.dedupe_key)
        if existing is not None:
            return Enqueued(existing, created=False)
    raise DuplicateBusy()
