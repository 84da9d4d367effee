"""The operator's overview against real Postgres: each figure from rows whose
answer is known, in one snapshot."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

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
    await insert_job(pool, kind="orders", run_after_offset=-600)  # ready, waited 10 min
    await insert_job(pool, kind="orders", run_after_offset=3600)  # waiting
    await insert_job(pool, kind="invoices", run_after_offset=-1200)  # ready, paused kind
    await insert_job(pool, kind="invoices", run_after_offset=-5)
    await insert_job(pool, kind="running")
    await store.claim("w1", 1, LEASE)  # takes "invoices"'s oldest? no: paused next
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
