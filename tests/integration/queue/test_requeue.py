"""A failed or cancelled job run again on request, and the history of its attempts,
against real Postgres: the guarded retry, its refusals, and the claim number that
keeps a stale attempt off the new claim."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from exportd import limits
from exportd.errors import ErrorKind
from exportd.maintenance.purge import Purge
from exportd.maintenance.reaper import Reaper
from exportd.queue.backoff import BackoffPolicy
from exportd.queue.job import ExportResult, Heartbeat, LetGo, UploadRef
from exportd.queue.postgres import PgJobStore
from exportd.queue.requeue import LiveDuplicate, NotRetryable, TableRefused
from exportd.queue.sql import migrations
from tests.support.helpers import insert_job, job_row

LEASE = 30.0


async def failed_job(store: PgJobStore, pool: asyncpg.Pool, **kwargs: Any) -> uuid.UUID:
    """A job claimed by w1 and failed for good (a permanent error)."""
    job_id = await insert_job(pool, **kwargs)
    [job] = await store.claim("w1", 1, LEASE)
    assert job.id == job_id
    assert await store.fail(job, "w1", "no such table src.orders", ErrorKind.QUERY_ERROR)
    return job_id


async def history(pool: asyncpg.Pool, job_id: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        "SELECT attempt, claim, worker_id, outcome, next_state, error_kind"
        " FROM exportd.job_attempts WHERE job_id = $1 ORDER BY seq",
        job_id,
    )
    return [tuple(r) for r in rows]


async def test_a_failed_job_runs_again_with_its_attempts_reset_and_its_errors_kept(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    job_id = await failed_job(store, pool, max_attempts=3)

    row = await store.requeue(job_id)

    assert row is not None
    assert (row["state"], row["attempts"], row["max_attempts"]) == ("pending", 0, 3)
    assert (row["worker_id"], row["finished_at"], row["lease_expires_at"]) == (None, None, None)
    assert await pool.fetchval("SELECT $1 <= now()", row["run_after"])
    # The last error stays on the row until the next attempt ends, as after a
    # retryable failure; the attempt itself is in the history.
    assert (row["error_kind"], row["error"]) == ("query_error", "no such table src.orders")
    assert await history(pool, job_id) == [(1, 1, "w1", "failed", "failed", "query_error")]
    [attempt] = await store.attempts(job_id)
    assert attempt.error == "no such table src.orders"
    assert attempt.started_at is not None
    assert attempt.started_at <= attempt.finished_at

    # It runs again, its attempts counted from 1, its claims counted on.
    [again] = await store.claim("w2", 1, LEASE)
    assert (again.id, again.attempt, again.claim) == (job_id, 1, 2)
    assert await store.complete(again, "w2", 60, LEASE, _result("k")) is not None
    assert await history(pool, job_id) == [
        (1, 1, "w1", "failed", "failed", "query_error"),
        (1, 2, "w2", "completed", "completed", None),
    ]


def _result(key: str) -> Any:
    async def commit() -> ExportResult:
        return ExportResult(key, 3, 1, "ab" * 32)

    return commit


async def test_a_job_cancelled_from_sql_while_it_ran_runs_again(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    job_id = await insert_job(pool)
    await store.claim("w1", 1, LEASE)
    assert await pool.fetchval("SELECT exportd.cancel($1)", job_id) is True
    assert await history(pool, job_id) == [(1, 1, "w1", "cancelled", "cancelled", "cancelled")]

    row = await store.requeue(job_id)

    assert row is not None
    assert (row["state"], row["attempts"]) == ("pending", 0)


async def test_a_job_cancelled_before_it_ran_runs_again_with_no_history(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    job_id = await insert_job(pool)
    assert await pool.fetchval("SELECT exportd.cancel($1)", job_id) is True

    row = await store.requeue(job_id)

    assert row is not None
    assert row["state"] == "pending"
    assert await store.attempts(job_id) == []


@pytest.mark.parametrize("state", ["pending", "processing", "completed", "expired"])
async def test_a_job_in_any_other_state_is_refused_and_left_as_it_is(
    pool: asyncpg.Pool, state: str
) -> None:
    store = PgJobStore(pool)
    job_id = await insert_job(pool)
    await pool.execute(
        "UPDATE exportd.jobs SET state = $2, worker_id = 'w', lease_expires_at = now()"
        " + interval '1 hour' WHERE id = $1",
        job_id,
        state,
    )
    before = await job_row(pool, job_id)

    with pytest.raises(NotRetryable) as refused:
        await store.requeue(job_id)

    assert refused.value.row["state"] == state
    assert f"is {state}: only a failed or cancelled job can be retried" in refused.value.message
    assert dict(await job_row(pool, job_id)) == dict(before)


async def test_an_unknown_job_or_another_owners_is_none(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    job_id = await failed_job(store, pool, owner="alice")

    assert await store.requeue(uuid.uuid4()) is None
    assert await store.requeue(job_id, "bob") is None
    assert (await job_row(pool, job_id))["state"] == "failed"
    assert (await store.requeue(job_id, "alice"))["state"] == "pending"  # type: ignore[index]


async def test_a_live_duplicate_refuses_the_retry_by_name(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    await pool.execute(
        "INSERT INTO exportd.jobs (owner, kind, state, dedupe_key, finished_at)"
        " VALUES ('u1', 'orders', 'failed', 'button', now())"
    )
    old = await pool.fetchval("SELECT id FROM exportd.jobs WHERE state = 'failed'")
    live = await pool.fetchval("SELECT exportd.enqueue('u1', 'orders', dedupe_key => 'button')")

    with pytest.raises(LiveDuplicate) as refused:
        await store.requeue(old)

    assert refused.value.duplicate is not None
    assert refused.value.duplicate["id"] == live
    assert "jobs_dedupe_idx" in refused.value.message
    assert str(live) in refused.value.message
    assert (await job_row(pool, old))["state"] == "failed"
    # Once the live one has ended, the retry goes through.
    await pool.fetchval("SELECT exportd.cancel($1)", live)
    assert (await store.requeue(old))["state"] == "pending"  # type: ignore[index]


async def test_a_row_the_table_refuses_as_pending_is_refused_by_its_constraint(
    pool: asyncpg.Pool,
) -> None:
    # A terminal row over a byte bound (exempt while terminal: restored from a
    # backup, or from before the bounds).
    job_id = await pool.fetchval(
        "INSERT INTO exportd.jobs (owner, kind, state, finished_at)"
        " VALUES ($1, 'orders', 'failed', now()) RETURNING id",
        "o" * 300,
    )

    with pytest.raises(TableRefused) as refused:
        await PgJobStore(pool).requeue(job_id)

    assert "jobs_owner_bytes" in refused.value.message
    assert (await job_row(pool, job_id))["state"] == "failed"


async def test_concurrent_retries_make_one_pending_job(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    job_id = await failed_job(store, pool)

    results = await asyncio.gather(
        *(store.requeue(job_id) for _ in range(8)), return_exceptions=True
    )

    done = [r for r in results if isinstance(r, asyncpg.Record)]
    refused = [r for r in results if isinstance(r, NotRetryable)]
    assert (len(done), len(refused)) == (1, 7), results
    assert {r.row["state"] for r in refused} == {"pending"}
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 1


async def test_concurrent_retries_of_two_duplicates_make_one_live_job(pool: asyncpg.Pool) -> None:
    ids = [
        await pool.fetchval(
            "INSERT INTO exportd.jobs (owner, kind, state, dedupe_key, finished_at)"
            " VALUES ('u1', 'orders', 'cancelled', 'button', now()) RETURNING id"
        )
        for _ in range(2)
    ]
    store = PgJobStore(pool)

    results = await asyncio.gather(*(store.requeue(i) for i in ids), return_exceptions=True)

    assert sorted(type(r).__name__ for r in results) == ["LiveDuplicate", "Record"], results
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs WHERE state = 'pending'") == 1


async def test_a_stale_attempt_cannot_act_on_the_claim_after_a_retry(pool: asyncpg.Pool) -> None:
    """The hazard the claim number closes: attempts reset by the retry, the same
    worker claims the job again as attempt 1; its stale attempt 1 must touch nothing."""
    store = PgJobStore(pool)
    job_id = await insert_job(pool)
    [stale] = await store.claim("w1", 1, LEASE)
    assert await store.fail(stale, "w1", "boom", ErrorKind.QUERY_ERROR)
    assert await store.requeue(job_id) is not None
    [fresh] = await store.claim("w1", 1, LEASE)
    assert (stale.attempt, fresh.attempt) == (1, 1)
    assert (stale.claim, fresh.claim) == (1, 2)
    committed: list[str] = []

    async def stale_commit() -> ExportResult:
        committed.append("stale")
        return ExportResult("stale-object", 1, 1, "00" * 32)

    beat = Heartbeat(job_id, stale.claim, stale.owner, 99, 99, 99)
    assert await store.heartbeat("w1", LEASE, [beat]) == set()
    assert await store.record_upload(stale, "w1", UploadRef("u-stale", "k")) is False
    assert await store.complete(stale, "w1", 60, LEASE, stale_commit) is None
    assert committed == [], "the stale attempt's object must never be committed"
    assert await store.retry(stale, "w1", 1, "stale", ErrorKind.INTERNAL) is None
    assert await store.fail(stale, "w1", "stale", ErrorKind.INTERNAL) is False
    assert await store.release(stale, "w1") is None
    row = await job_row(pool, job_id)
    assert (row["state"], row["worker_id"], row["claims"], row["upload_id"]) == (
        "processing",
        "w1",
        2,
        None,
    )
    assert row["rows_written"] == 0
    state = await store.state_of(job_id)
    assert state is not None
    assert not state.held_by("w1", stale.claim, stale.owner)
    assert state.held_by("w1", fresh.claim, fresh.owner)

    # The fresh claim acts as ever.
    fresh_beat = Heartbeat(job_id, fresh.claim, fresh.owner, 1, 1, 1)
    assert await store.heartbeat("w1", LEASE, [fresh_beat]) == {job_id}
    assert await store.complete(fresh, "w1", 60, LEASE, _result("fresh-object")) is not None
    assert (await job_row(pool, job_id))["object_key"] == "fresh-object"


async def test_the_history_keeps_every_way_an_attempt_ends(pool: asyncpg.Pool) -> None:
    """A retryable failure, a reaped lease, a hand-back at shutdown, a cancel from SQL,
    a retry on request, a completion: one row each, in order."""
    store = PgJobStore(pool)
    job_id = await insert_job(pool, max_attempts=5)
    ready = "UPDATE exportd.jobs SET run_after = now() WHERE id = $1"

    [job] = await store.claim("w1", 1, LEASE)
    went = await store.retry(job, "w1", 60, "S3 down", ErrorKind.STORAGE_UNAVAILABLE)
    assert went is LetGo.PENDING
    await pool.execute(ready, job_id)
    await store.claim("w2", 1, LEASE)
    await pool.execute(
        "UPDATE exportd.jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        job_id,
    )
    assert [r.state for r in await Reaper(store, BackoffPolicy()).run_once()] == ["pending"]
    await pool.execute(ready, job_id)
    [job] = await store.claim("w3", 1, LEASE)
    assert await store.release(job, "w3") is LetGo.PENDING
    await store.claim("w4", 1, LEASE)
    assert await pool.fetchval("SELECT exportd.cancel($1)", job_id) is True
    assert await store.requeue(job_id) is not None
    [job] = await store.claim("w5", 1, LEASE)
    assert await store.complete(job, "w5", 60, LEASE, _result("k")) is not None

    assert await history(pool, job_id) == [
        (1, 1, "w1", "retry_scheduled", "pending", "storage_unavailable"),
        (2, 2, "w2", "reaped", "pending", "lease_expired"),
        (3, 3, "w3", "handed_back", "pending", None),
        (3, 4, "w4", "cancelled", "cancelled", "cancelled"),
        (1, 5, "w5", "completed", "completed", None),
    ]
    attempts = await store.attempts(job_id)
    assert "w2 stopped renewing its lease" in (attempts[1].error or "")
    assert [a.finished_at for a in attempts] == sorted(a.finished_at for a in attempts)
    assert (await job_row(pool, job_id))["claims"] == 5


async def test_a_reaped_job_out_of_attempts_is_recorded_reaped_and_failed(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    job_id = await insert_job(pool, max_attempts=1)
    await store.claim("w1", 1, LEASE)
    await pool.execute("UPDATE exportd.jobs SET lease_expires_at = now() - interval '1 second'")

    await Reaper(store, BackoffPolicy()).run_once()

    assert await history(pool, job_id) == [(1, 1, "w1", "reaped", "failed", "lease_expired")]


async def test_an_attempt_is_recorded_only_with_the_change_that_ended_it(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    job_id = await insert_job(pool)
    await store.claim("w1", 1, LEASE)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.fetchval("SELECT exportd.cancel($1)", job_id)
        assert await conn.fetchval(
            "SELECT count(*) FROM exportd.job_attempts WHERE job_id = $1", job_id
        )
        await tx.rollback()
    assert await store.attempts(job_id) == []
    assert (await job_row(pool, job_id))["state"] == "processing"


async def test_an_applications_long_error_is_cut_in_the_history(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    job_id = await insert_job(pool)
    await store.claim("w1", 1, LEASE)
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'failed', error = $2, error_kind = $3 WHERE id = $1",
        job_id,
        "é" * 50_000,
        "k" * 500,
    )

    [attempt] = await store.attempts(job_id)

    assert attempt.error == "é" * 2000
    assert attempt.error_kind == "k" * 64
    assert attempt.outcome == "failed"


async def test_the_purge_takes_a_jobs_history_along(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    old = await failed_job(store, pool)
    recent = await insert_job(pool)
    [job] = await store.claim("w1", 1, LEASE)
    assert await store.fail(job, "w1", "x", ErrorKind.QUERY_ERROR)
    await pool.execute(
        "UPDATE exportd.jobs SET finished_at = now() - interval '40 days' WHERE id = $1", old
    )

    assert await Purge(store, history_seconds=30 * 86400).run_once() == 1

    assert await job_row(pool, old) is None
    assert await store.attempts(old) == []
    assert len(await store.attempts(recent)) == 1


def test_the_history_bounds_use_the_numbers_of_limits() -> None:
    [migration] = [m for m in migrations() if m.name == "attempts"]
    assert f"char_length(error) <= {limits.ERROR_MAX_CHARS})" in migration.sql
    assert f"left(NEW.error, {limits.ERROR_MAX_CHARS})" in migration.sql
