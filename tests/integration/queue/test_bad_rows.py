"""Rows the main application could write wrongly: the table refuses each, by name.

The rows the table accepts although they are wrong (an unknown kind, params
of the wrong type...) are run by real daemons in tests/system/faults/test_faults.py, where
each must end failed with a clear error while the other jobs complete.
"""

from __future__ import annotations

import asyncpg
import pytest

from exportd.errors import ErrorKind
from exportd.queue.job import LetGo
from exportd.queue.postgres import PgJobStore
from tests.support.fault_bad_rows import REFUSED, BadRow, insert_statement
from tests.support.helpers import insert_job, job_row

LEASE = 30.0


@pytest.mark.parametrize("bad", REFUSED, ids=[b.label for b in REFUSED])
async def test_the_table_refuses_a_wrong_row_saying_why(pool: asyncpg.Pool, bad: BadRow) -> None:
    sql, args = insert_statement(bad)
    with pytest.raises(asyncpg.PostgresError) as refused:
        await pool.fetchval(sql, *args)
    assert bad.expect in str(refused.value)
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 0


async def test_a_retry_after_max_attempts_was_lowered_fails_the_job(pool: asyncpg.Pool) -> None:
    # The worker decided to retry with the max_attempts it claimed the job
    # with; the application lowered it meanwhile to the attempts made. The
    # job fails rather than return to pending without an attempt left.
    job_id = await insert_job(pool, max_attempts=5)
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)
    await pool.execute("UPDATE exportd.jobs SET max_attempts = 1 WHERE id = $1", job_id)
    went = await store.retry(job, "w1", 0.0, "S3 down", ErrorKind.STORAGE_UNAVAILABLE)
    assert went is LetGo.FAILED
    row = await job_row(pool, job_id)
    assert (row["state"], row["error_kind"]) == ("failed", "storage_unavailable")
    assert row["error"] == "S3 down; gave up after 1 of 1 attempts"
    assert row["finished_at"] is not None


async def test_a_release_without_an_attempt_left_fails_the_job(pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool, max_attempts=5)
    store = PgJobStore(pool)
    [first] = await store.claim("w1", 1, LEASE)
    went = await store.retry(first, "w1", 0.0, "S3 down", ErrorKind.STORAGE_UNAVAILABLE)
    assert went is LetGo.PENDING
    [second] = await store.claim("w1", 1, LEASE)
    assert second.attempt == 2
    await pool.execute("UPDATE exportd.jobs SET max_attempts = 1 WHERE id = $1", job_id)
    assert await store.release(second, "w1") is LetGo.FAILED
    row = await job_row(pool, job_id)
    assert (row["state"], row["attempts"], row["error_kind"]) == ("failed", 2, "lease_expired")
    assert "max_attempts (1)" in row["error"]


async def test_a_release_with_attempts_left_gives_the_attempt_back(pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool, max_attempts=2)
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)
    assert await store.release(job, "w1") is LetGo.PENDING
    row = await job_row(pool, job_id)
    assert (row["state"], row["attempts"], row["error_kind"]) == ("pending", 0, None)
