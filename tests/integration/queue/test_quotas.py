"""Per-kind quotas against real Postgres: the count under the (kind, owner) lock at
enqueue, and the decision on rows inserted directly."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import asyncpg
import pytest

from exportd import database
from exportd.queue.enqueue import NewJob, QuotaExceeded
from exportd.queue.job import Job
from exportd.queue.postgres import PgJobStore
from exportd.quotas import Quota
from tests.support.helpers import job_row

DAY = timedelta(days=1)
ONE_A_DAY = Quota(1, DAY, "P1D")


async def insert_at(
    pool: asyncpg.Pool,
    ago: timedelta,
    *,
    owner: str = "alice",
    kind: str = "full",
    state: str = "pending",
    error_kind: str | None = None,
    job_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A row inserted directly, created ``ago`` before now."""
    inserted: uuid.UUID = await pool.fetchval(
        "INSERT INTO exportd.jobs (id, owner, kind, state, error_kind, created_at, finished_at)"
        " VALUES (coalesce($6, gen_random_uuid()), $1, $2, $3, $4, now() - $5::interval,"
        "         CASE WHEN $3 IN ('failed', 'completed') THEN now() END)"
        " RETURNING id",
        owner,
        kind,
        state,
        error_kind,
        ago,
        job_id,
    )
    return inserted


async def as_claimed(pool: asyncpg.Pool, job_id: uuid.UUID) -> Job:
    """The row as the worker knows it once claimed (the decision reads only its
    owner, kind, created_at and id)."""
    row = await job_row(pool, job_id)
    return Job(
        id=row["id"],
        owner=row["owner"],
        kind=row["kind"],
        params={},
        format="csv",
        priority=0,
        attempt=1,
        claim=1,
        max_attempts=5,
        created_at=row["created_at"],
    )


async def created_at(pool: asyncpg.Pool, job_id: uuid.UUID) -> datetime:
    value: datetime = await pool.fetchval(
        "SELECT created_at FROM exportd.jobs WHERE id = $1", job_id
    )
    return value


async def test_the_second_job_in_a_window_is_refused_with_when_to_ask_again(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    first = await store.enqueue(NewJob("alice", "full"), ONE_A_DAY)
    assert first.created
    with pytest.raises(QuotaExceeded) as refused:
        await store.enqueue(NewJob("alice", "full"), ONE_A_DAY)
    assert refused.value.retry_at == first.row["created_at"] + DAY
    assert 86_000 < refused.value.retry_after <= 86_400
    # Another owner, another kind, and a kind without a quota are not affected.
    assert (await store.enqueue(NewJob("bob", "full"), ONE_A_DAY)).created
    assert (await store.enqueue(NewJob("alice", "other"), ONE_A_DAY)).created
    assert (await store.enqueue(NewJob("alice", "full"))).created
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs WHERE kind = 'full'") == 3


async def test_a_job_created_just_outside_the_window_does_not_count(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    await insert_at(pool, DAY + timedelta(seconds=1), state="completed")
    assert (await store.enqueue(NewJob("alice", "full"), Quota(2, DAY))).created
    # One just inside the window counts: two of two, and the older leaves first.
    inside = await insert_at(pool, DAY - timedelta(minutes=1), state="completed")
    with pytest.raises(QuotaExceeded) as refused:
        await store.enqueue(NewJob("alice", "full"), Quota(2, DAY))
    assert refused.value.retry_at == await created_at(pool, inside) + DAY
    assert refused.value.retry_after <= 60


async def test_every_state_counts_but_a_refusal_for_quota(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    for _ in range(3):
        await insert_at(pool, timedelta(hours=1), state="failed", error_kind="quota_exceeded")
    assert (await store.enqueue(NewJob("alice", "full"), ONE_A_DAY)).created
    await insert_at(pool, timedelta(hours=1), owner="bob", state="cancelled")
    with pytest.raises(QuotaExceeded):
        await store.enqueue(NewJob("bob", "full"), ONE_A_DAY)
    await insert_at(pool, timedelta(hours=1), owner="carol", state="failed", error_kind="timeout")
    with pytest.raises(QuotaExceeded):
        await store.enqueue(NewJob("carol", "full"), ONE_A_DAY)


async def test_a_dedupe_hit_over_the_quota_answers_the_live_job(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    first = await store.enqueue(NewJob("alice", "full", dedupe_key="button"), ONE_A_DAY)
    again = await store.enqueue(NewJob("alice", "full", dedupe_key="button"), ONE_A_DAY)
    assert not again.created
    assert again.row["id"] == first.row["id"]
    with pytest.raises(QuotaExceeded):
        await store.enqueue(NewJob("alice", "full", dedupe_key="other"), ONE_A_DAY)


async def test_concurrent_enqueues_let_exactly_max_in(dsn: str) -> None:
    # A connection each, so that the requests really race; with max = 3.
    pool = await database.create_pool(dsn, min_size=20, max_size=20)
    try:
        store = PgJobStore(pool)
        quota = Quota(3, DAY)

        async def ask(owner: str) -> bool:
            try:
                return (await store.enqueue(NewJob(owner, "full"), quota)).created
            except QuotaExceeded:
                return False

        answers = await asyncio.gather(*(ask("alice") for _ in range(20)), ask("bob"))
        assert sum(answers[:20]) == 3
        assert answers[20] is True
        count = "SELECT count(*) FROM exportd.jobs WHERE owner = $1"
        assert await pool.fetchval(count, "alice") == 3
    finally:
        await pool.close()


async def test_direct_rows_are_decided_by_creation_order_whatever_the_claim_order(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    # Two rows of one transaction: the same created_at, the id breaks the tie.
    low, high = sorted([uuid.uuid4(), uuid.uuid4()])
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO exportd.jobs (id, owner, kind) VALUES ($1, 'alice', 'full'),"
            " ($2, 'alice', 'full')",
            high,
            low,
        )
    first, second = await as_claimed(pool, low), await as_claimed(pool, high)
    assert first.created_at == second.created_at
    # The later one asked first: the earlier, still pending, counts against it.
    assert await store.quota_retry_at(second, ONE_A_DAY) == first.created_at + DAY
    assert await store.quota_retry_at(first, ONE_A_DAY) is None
    # And asked again in the other order, the same answers.
    assert await store.quota_retry_at(first, ONE_A_DAY) is None
    assert await store.quota_retry_at(second, ONE_A_DAY) == first.created_at + DAY


async def test_an_undecided_row_that_its_own_window_refuses_does_not_count(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    # A counted, B refused by A (when decided), C 24.5 h after A: only B is in C's window.
    a = await insert_at(pool, timedelta(hours=50))
    b = await insert_at(pool, timedelta(hours=49))
    c = await insert_at(pool, timedelta(hours=25.5))
    jobs = {name: await as_claimed(pool, i) for name, i in (("a", a), ("b", b), ("c", c))}
    # Decided last first: B is still pending, yet it does not count against C.
    assert await store.quota_retry_at(jobs["c"], ONE_A_DAY) is None
    assert await store.quota_retry_at(jobs["b"], ONE_A_DAY) == jobs["a"].created_at + DAY
    assert await store.quota_retry_at(jobs["a"], ONE_A_DAY) is None
    assert await store.quota_retry_at(jobs["c"], ONE_A_DAY) is None


async def test_a_request_counts_undecided_rows_as_their_own_decision_says(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    # A 30 h ago, B 10 h ago, both never claimed: A refuses B, and A has left the
    # window of a request made now, so nothing counts against it.
    await insert_at(pool, timedelta(hours=30))
    await insert_at(pool, timedelta(hours=10))
    assert (await store.enqueue(NewJob("alice", "full"), ONE_A_DAY)).created
    # Now the new job counts.
    with pytest.raises(QuotaExceeded):
        await store.enqueue(NewJob("alice", "full"), ONE_A_DAY)


async def test_a_row_claimed_but_not_yet_decided_counts_as_its_decision_will_say(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    await insert_at(pool, timedelta(hours=30), state="completed")
    # B is claimed by another daemon that has not decided it yet: A refuses it.
    b = await insert_at(pool, timedelta(hours=10))
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'processing', attempts = 1, worker_id = 'w2',"
        " lease_expires_at = now() + interval '1 minute' WHERE id = $1",
        b,
    )
    c = await insert_at(pool, timedelta(hours=1))
    assert await store.quota_retry_at(await as_claimed(pool, c), ONE_A_DAY) is None
    assert await store.quota_retry_at(await as_claimed(pool, b), ONE_A_DAY) is not None


async def test_a_row_created_in_the_future_counts_at_neither_door_until_then(
    pool: asyncpg.Pool,
) -> None:
    # An application's INSERT set created_at ten years ahead: it is created
    # within no window that ends now, so it refuses nobody now, at either door.
    store = PgJobStore(pool)
    await insert_at(pool, -timedelta(days=3650), state="completed")
    made = await store.enqueue(NewJob("alice", "full"), ONE_A_DAY)
    assert made.created
    assert await store.quota_retry_at(await as_claimed(pool, made.row["id"]), ONE_A_DAY) is None
    # The count is still exact: the request's own job counts.
    with pytest.raises(QuotaExceeded) as refused:
        await store.enqueue(NewJob("alice", "full"), ONE_A_DAY)
    assert refused.value.retry_at == made.row["created_at"] + DAY
