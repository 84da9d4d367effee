"""Reading jobs for the API and the CLI: one job, a page of an owner's jobs,
the queue's figures for /metrics, and the readiness ping."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from exportd.metrics import QueueSnapshot
from exportd.queue.sql import queries


async def job(pool: asyncpg.Pool, job_id: uuid.UUID) -> asyncpg.Record | None:
    """The job's whole row, or None when there is no such job."""
    row: asyncpg.Record | None = await pool.fetchrow(queries()["get_job"], job_id)
    return row


async def list_jobs(
    pool: asyncpg.Pool,
    owner: str | None,
    *,
    states: Sequence[str] | None,
    kinds: Sequence[str] | None,
    created_after: datetime | None,
    created_before: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
    error_kinds: Sequence[str] | None = None,
) -> list[asyncpg.Record]:
    """Up to ``limit`` of ``owner``'s jobs (of every owner: None, for the operator),
    newest first (created_at, then id), that come after ``after`` (the
    (created_at, id) of the last job of the previous page) in that order; a
    None filter is no filter, bounds are exclusive. ``error_kinds`` keeps the
    jobs whose last error was of one of those kinds."""
    statement = "api_list_jobs" if owner is not None else "api_list_all_jobs"
    rows: list[asyncpg.Record] = await pool.fetch(
        queries()[statement],
        owner,
        None if states is None else list(states),
        None if kinds is None else list(kinds),
        created_after,
        created_before,
        after[0] if after else None,
        after[1] if after else None,
        limit,
        None if error_kinds is None else list(error_kinds),
    )
    return rows


async def snapshot(pool: asyncpg.Pool) -> QueueSnapshot:
    """Jobs per state, and the seconds the oldest ready pending job has waited.

    Counts the whole table: callers share one answer for a while (QueueStats).
    """
    row = await pool.fetchrow(queries()["api_queue_stats"])
    assert row is not None  # one row, always
    return QueueSnapshot(
        {str(k): int(v) for k, v in row["by_state"].items()},
        float(row["oldest_pending_seconds"]),
    )


async def ping(pool: asyncpg.Pool) -> None:
    """One round trip to the queue database; raises what the driver raises."""
    await pool.fetchval(queries()["ping"])
