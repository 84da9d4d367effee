"""Running a failed or cancelled job again, on request (``POST /v1/jobs/{id}/retry``,
``exportd retry``), and reading the history of a job's attempts.

The retry is one guarded statement (``requeue``): only a ``failed`` or
``cancelled`` row changes, so of two retries at once one makes the job
``pending`` and the other finds it pending. The job's ``attempts`` go back to
0 (it gets its ``max_attempts`` again), its ``claims`` do not: the claim
number keeps naming each claim, so a stale task of an earlier attempt can
never act on the new one. What each earlier attempt did stays in
``exportd.job_attempts``, written by a trigger in the transaction that ended
it (migration 0009).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from exportd.queue.sql import queries

# The states a job may be retried from.
RETRYABLE_STATES = ("failed", "cancelled")
# The unique index that keeps one live job per (owner, dedupe_key).
DEDUPE_INDEX = "jobs_dedupe_idx"
# At most this many attempts are shown with a job: the last ones.
ATTEMPTS_SHOWN = 100
# A retry that met the job changing state between its statements (a
# concurrent retry whose job failed again at once): tried again this often.
_TRIES = 3


class RetryRefused(Exception):
    """The job exists (within the owner scope) but cannot be retried now; ``row``
    is the job as it was found, ``reason`` a stable code, the message says why."""

    def __init__(self, reason: str, message: str, row: asyncpg.Record) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.row = row


class NotRetryable(RetryRefused):
    """The job is in a state a retry does not apply to (pending, processing,
    completed, expired)."""

    def __init__(self, row: asyncpg.Record) -> None:
        state = row["state"]
        super().__init__(
            "state",
            f"job {row['id']} is {state}: only a failed or cancelled job can be retried"
            + (" (it has not ended yet)" if state in ("pending", "processing") else ""),
            row,
        )


class LiveDuplicate(RetryRefused):
    """The job's owner has a live (pending or processing) job with the same
    dedupe_key: ``jobs_dedupe_idx`` refused the retry. ``duplicate`` is that job's
    row, when it was still live once read."""

    def __init__(self, row: asyncpg.Record, duplicate: asyncpg.Record | None) -> None:
        live = f"job {duplicate['id']}" if duplicate is not None else "another job"
        super().__init__(
            "duplicate",
            f"owner {row['owner']!r} already has a live job with dedupe_key "
            f"{row['dedupe_key']!r} ({live}; the table's {DEDUPE_INDEX} allows one): "
            "cancel it or wait for it to end, then retry",
            row,
        )
        self.duplicate = duplicate


class TableRefused(RetryRefused):
    """A constraint of the table refused the job as pending (a row written before a
    bound, exempt while terminal); ``cause`` is the driver's error."""

    def __init__(self, row: asyncpg.Record, cause: asyncpg.PostgresError) -> None:
        name = getattr(cause, "constraint_name", None) or cause.__class__.__name__
        super().__init__(
            "refused",
            f"job {row['id']} cannot run again: the queue table refuses it as pending "
            f"({name}: {str(cause)[:300]}); enqueue a new job instead",
            row,
        )
        self.cause = cause


@dataclass(frozen=True)
class Attempt:
    """One ended attempt of a job, as ``exportd.job_attempts`` keeps it."""

    attempt: int  # the job's attempts when it ended (reset by a retry)
    claim: int  # the claim's number (never reset)
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime
    outcome: str  # completed, failed, retry_scheduled, cancelled, reaped, handed_back
    next_state: str  # the job's state the attempt left it in
    error_kind: str | None
    error: str | None


async def requeue(
    pool: asyncpg.Pool, job_id: uuid.UUID, owner_scope: str | None
) -> asyncpg.Record | None:
    """Make the failed or cancelled job ``job_id`` pending again, now, its attempts
    reset; returns its row after, or None when there is no such job (or it is
    another owner's than ``owner_scope``, when given).

    Raises ``NotRetryable`` (any other state), ``LiveDuplicate`` (its dedupe_key
    has a live job) or ``TableRefused`` (a CHECK constraint refused it as
    pending), each carrying the job's row.
    """
    q = queries()
    for _ in range(_TRIES):
        try:
            row: asyncpg.Record | None = await pool.fetchrow(q["requeue"], job_id, owner_scope)
        except asyncpg.UniqueViolationError as exc:
            found = await pool.fetchrow(q["get_job"], job_id)
            if found is None or exc.constraint_name != DEDUPE_INDEX:
                raise
            duplicate = await pool.fetchrow(
                q["live_duplicate"], found["owner"], found["dedupe_key"]
            )
            raise LiveDuplicate(found, duplicate) from None
        except (asyncpg.CheckViolationError, asyncpg.DataError) as exc:
            found = await pool.fetchrow(q["get_job"], job_id)
            if found is None:
                raise
            raise TableRefused(found, exc) from None
        if row is not None:
            return row
        found = await pool.fetchrow(q["get_job"], job_id)
        if found is None or (owner_scope is not None and found["owner"] != owner_scope):
            return None
        if found["state"] not in RETRYABLE_STATES:
            raise NotRetryable(found)
        # Failed or cancelled again by now (another retry's run ended at once):
        # the statement decides again.
    raise RetryRefused("busy", f"job {job_id} kept changing state; retry", found)


async def attempts(
    pool: asyncpg.Pool, job_id: uuid.UUID, limit: int = ATTEMPTS_SHOWN
) -> list[Attempt]:
    """The last ``limit`` ended attempts of ``job_id``, oldest first (empty for a
    job that never ran, or an unknown one)."""
    rows = await pool.fetch(queries()["job_attempts"], job_id, limit)
    return [
        Attempt(
            attempt=int(r["attempt"]),
            claim=int(r["claim"]),
            worker_id=r["worker_id"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            outcome=str(r["outcome"]),
            next_state=str(r["next_state"]),
            error_kind=r["error_kind"],
            error=r["error"],
        )
        for r in rows
    ]
