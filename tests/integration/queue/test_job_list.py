"""The list of jobs for the operator: every owner's jobs (owner None), filtered by
state, kind, error kind and creation time, keyset-paginated newest first like
GET /v1/jobs; and one owner's jobs with the same filters."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from exportd.queue.postgres import PgJobStore
from tests.support.helpers import insert_job

LEASE = 30.0


async def _failed(pool: asyncpg.Pool, owner: str, kind: str, error_kind: str) -> uuid.UUID:
    job_id = await insert_job(pool, owner=owner, kind=kind)
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'failed', error_kind = $2, error = 'x',"
        " finished_at = now() WHERE id = $1",
        job_id,
        error_kind,
    )
    return job_id


async def _pages(store: PgJobStore, owner: str | None, **filters: object) -> list[uuid.UUID]:
    """Every job the filters keep, two at a time, following the cursor."""
    seen: list[uuid.UUID] = []
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        page = await store.list_jobs(owner, after=after, limit=2, **filters)  # type: ignore[arg-type]
        seen += [r["id"] for r in page]
        if len(page) < 2:
            return seen
        after = (page[-1]["created_at"], page[-1]["id"])


async def test_every_owners_jobs_newest_first_across_pages(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    made = [await insert_job(pool, owner=f"u{i % 3}", kind="orders") for i in range(5)]

    assert await _pages(store, None) == made[::-1]
    assert await _pages(store, "u1") == [made[4], made[1]]


async def test_filters_by_state_kind_and_error_kind(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    timeout_a = await _failed(pool, "u1", "orders", "timeout")
    await _failed(pool, "u2", "orders", "query_failed")
    timeout_b = await _failed(pool, "u2", "invoices", "timeout")
    await insert_job(pool, owner="u1", kind="orders")

    assert await _pages(store, None, error_kinds=["timeout"]) == [timeout_b, timeout_a]
    assert await _pages(store, None, error_kinds=["timeout"], kinds=["orders"]) == [timeout_a]
    assert await _pages(store, "u2", error_kinds=["timeout"]) == [timeout_b]
    assert len(await _pages(store, None, states=["failed"])) == 3
    assert await _pages(store, None, states=["pending"], error_kinds=["timeout"]) == []


async def test_a_time_range_bounds_the_list(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    first, middle, last = [await insert_job(pool) for _ in range(3)]
    times = {
        r["id"]: r["created_at"]
        for r in await pool.fetch("SELECT id, created_at FROM exportd.jobs")
    }

    kept = await _pages(store, None, created_after=times[first], created_before=times[last])

    assert kept == [middle]
