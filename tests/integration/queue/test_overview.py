"""The operator's overview against real Postgres: each figure from rows whose
answer is known, in one snapshot."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from exportd.queue.overview import MINUTES
from exportd.queue.postgres import PgJobStore
from tests.support.helpers import insert_job

LEASE = 30.0


async def _finished(
    pool: asyncpg.Pool,
    kind: str,
    state: str,
    *,
    ago: float,
    took: float = 1.0,
    count: int = 1,
) -> None:
    """``count`` jobs of ``kind`` that ended in ``state`` ``ago`` seconds ago after
    running ``took`` seconds."""
    await pool.execute(
        "INSERT INTO exportd.jobs (owner, kind, state, attempts, started_at, finished_at)"
        " SELECT 'o', $1, $2, 1, now() - make_interval(secs => $3::float8 + $4::float8),"
        " now() - make_interval(secs => $3::float8) FROM generate_series(1, $5)",
        kind,
        state,
        ago,
        took,
        count,
    )


async def test_counts_pending_readiness_and_pauses(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    running = await insert_job(pool, kind="running", run_after_offset=-3000)
    [claimed] = await store.claim("w1", 1, LEASE)  # the oldest due job
    assert claimed.id == running
    await insert_job(pool, kind="orders", run_after_offset=-600)  # ready, waited 10 min
    await insert_job(pool, kind="orders", run_after_offset=3600)  # waiting
    await insert_job(pool, kind="invoices", run_after_offset=-1200)  # older, but paused
    await insert_job(pool, kind="invoices", run_after_offset=-5)
    await store.pause_kind("invoices", paused_by="test")
    await _finished(pool, "orders", "completed", ago=60, count=3)
    await _finished(pool, "orders", "failed", ago=120)
    await _finished(pool, "orders", "completed", ago=3 * 86400)  # outside the window

    seen = await store.overview()

    assert seen.count("completed", "orders") == 3
    assert seen.count("failed") == 1
    pending = {p.kind: p for p in seen.pending}
    assert pending["invoices"].paused
    assert not pending["orders"].paused
    assert (pending["orders"].pending, pending["orders"].ready) == (2, 1)
    assert seen.oldest_ready_seconds is not None
    assert 600 <= seen.oldest_ready_seconds < 700
    assert len(seen.minutes) == MINUTES
    assert seen.minutes[-1].minute <= seen.as_of < seen.minutes[-1].minute + timedelta(minutes=1)
    assert sum(m.completed for m in seen.minutes) == 3
    assert sum(m.failed for m in seen.minutes) == 1
    [durations] = seen.durations
    assert (durations.kind, durations.completed) == ("orders", 3)
    assert [p.kind for p in seen.paused] == ["invoices"]
    assert seen.count("processing") == 1
    assert [j.id for j in seen.running] == [running]
    assert seen.workers == ()  # no daemon announced itself
    # Each finished row inserted recorded its event: five webhooks to send.
    assert seen.webhooks.pending == 5
    assert seen.count("pending", "invoices") == 2


async def test_minutes_and_durations_of_the_last_hour(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    for took in (10.0, 20.0, 30.0):
        await _finished(pool, "orders", "completed", ago=150, took=took)
    await _finished(pool, "orders", "expired", ago=150, took=20.0)  # completed, then expired
    await _finished(pool, "invoices", "failed", ago=150)
    await _finished(pool, "orders", "completed", ago=2 * 3600)  # before the hour

    seen = await store.overview()

    [bucket] = [m for m in seen.minutes if m.completed or m.failed]
    assert (bucket.completed, bucket.failed) == (4, 1)
    ended = await pool.fetchval("SELECT finished_at FROM exportd.jobs WHERE kind = 'invoices'")
    assert bucket.minute == ended.replace(second=0, microsecond=0)
    [orders] = seen.durations
    assert (orders.kind, orders.completed) == ("orders", 4)
    # Continuous percentiles of 10, 20, 20, 30 seconds.
    assert orders.p50_seconds == 20.0
    assert orders.p95_seconds == pytest.approx(28.5)
