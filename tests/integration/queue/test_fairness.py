"""Fair claims, overdue backlogs and dedupe keys, against real Postgres."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import asyncpg
import pytest

from exportd.queue.postgres import PgJobStore
from exportd.queue.sql import queries
from tests.support.helpers import add_history, insert_job, plan_nodes

LEASE = 30.0
LIMIT = 2


async def running_per_owner(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT owner, count(*) AS n FROM exportd.jobs WHERE state = 'processing' GROUP BY owner"
    )
    return {r["owner"]: r["n"] for r in rows}


async def finish_some(pool: asyncpg.Pool, rng: random.Random) -> None:
    ids = [
        r["id"] for r in await pool.fetch("SELECT id FROM exportd.jobs WHERE state = 'processing'")
    ]
    done = rng.sample(ids, k=(len(ids) + 1) // 2)
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'completed', finished_at = now(),"
        " lease_expires_at = NULL WHERE id = ANY($1::uuid[])",
        done,
    )


async def test_one_owner_with_many_jobs_never_exceeds_the_limit(pool: asyncpg.Pool) -> None:
    # The heavy owner enqueued first: with a plain claim it would take every slot.
    for _ in range(50):
        await insert_job(pool, owner="heavy")
    for owner in ("a", "b", "c"):
        for _ in range(5):
            await insert_job(pool, owner=owner)
    stores = [PgJobStore(pool, max_per_owner=LIMIT) for _ in range(4)]
    rng = random.Random(7)
    seen_owners: set[str] = set()

    for _ in range(200):
        # Four daemons claim at the same moment.
        batches = await asyncio.gather(*(s.claim(f"w{i}", 3, LEASE) for i, s in enumerate(stores)))
        seen_owners.update(j.owner for batch in batches for j in batch)
        counts = await running_per_owner(pool)
        assert max(counts.values(), default=0) <= LIMIT, counts
        await finish_some(pool, rng)
        if not await pool.fetchval("SELECT count(*) FROM exportd.jobs WHERE state = 'pending'"):
            break
    assert seen_owners == {"heavy", "a", "b", "c"}
    # Everything ran in the end, each job once.
    rows = await pool.fetch("SELECT state, attempts FROM exportd.jobs")
    assert {(r["state"], r["attempts"]) for r in rows} <= {("completed", 1), ("processing", 1)}


async def test_the_others_start_at_once_while_the_heavy_owner_is_at_its_limit(
    pool: asyncpg.Pool,
) -> None:
    for _ in range(50):
        await insert_job(pool, owner="heavy")
    light = await insert_job(pool, owner="light")
    store = PgJobStore(pool, max_per_owner=LIMIT)

    first = await store.claim("w1", 4, LEASE)
    assert [j.owner for j in first] == ["heavy", "heavy"]
    second = await store.claim("w1", 4, LEASE)
    assert [j.id for j in second] == [light]


async def test_fair_claims_keep_priorities(pool: asyncpg.Pool) -> None:
    for _ in range(20):
        await insert_job(pool, owner="heavy", priority=1)
    urgent = await insert_job(pool, owner="other", priority=9)
    low = await insert_job(pool, owner="third", priority=0)
    store = PgJobStore(pool, max_per_owner=LIMIT)

    claimed = sorted(await store.claim("w1", 3, LEASE), key=lambda j: -j.priority)
    assert claimed[0].id == urgent
    assert [j.owner for j in claimed[1:]] == ["heavy", "heavy"]
    assert low not in {j.id for j in claimed}
    assert [j.id for j in await store.claim("w1", 3, LEASE)] == [low]


@pytest.mark.parametrize("per_owner", [None, LIMIT], ids=["unlimited", "per-owner"])
async def test_claim_walks_the_partial_indexes(pool: asyncpg.Pool, per_owner: int | None) -> None:
    async with pool.acquire() as conn:
        await insert_job(conn)
        await add_history(conn)
        plan = await conn.fetchval(
            "EXPLAIN (FORMAT JSON) " + queries()["claim"], "w", 10, LEASE, per_owner, None, []
        )
    text = json.dumps(plan)
    # Pending jobs in claim order; running jobs counted from their own index,
    # and not at all without a limit: nothing reads the history.
    assert "jobs_claim_idx" in text
    assert ("jobs_running_owner_idx" in text) == (per_owner is not None)
    # The only table read whole is exportd.paused_kinds: a handful of rows,
    # read once per claim.
    assert {n.get("Relation Name") for n in plan_nodes(plan) if n["Node Type"] == "Seq Scan"} <= {
        "paused_kinds"
    }


async def test_an_overdue_backlog_is_claimed_in_priority_order_a_few_at_a_time(
    pool: asyncpg.Pool,
) -> None:
    # Every daemon was down for days: all these jobs are long overdue.
    by_priority: dict[int, list[uuid.UUID]] = {}
    for i in range(30):
        priority = i % 5
        job_id = await insert_job(pool, priority=priority, run_after_offset=-3 * 86400 - i)
        by_priority.setdefault(priority, []).append(job_id)
    stores = [PgJobStore(pool) for _ in range(3)]

    batches = await asyncio.gather(*(s.claim(f"w{i}", 2, LEASE) for i, s in enumerate(stores)))
    claimed = [j for batch in batches for j in batch]
    # Each daemon takes only its free slots, not the backlog.
    assert len(claimed) == 6
    assert {j.id for j in claimed} == set(by_priority[4])
    pending = await pool.fetchval("SELECT count(*) FROM exportd.jobs WHERE state = 'pending'")
    assert pending == 24


async def test_dedupe_key_double_click_makes_one_job(pool: asyncpg.Pool) -> None:
    enqueue = "SELECT exportd.enqueue($1, 'orders', dedupe_key => 'export-button')"
    results = await asyncio.gather(
        *(pool.fetchval(enqueue, "u1") for _ in range(5)), return_exceptions=True
    )
    made = [r for r in results if isinstance(r, uuid.UUID)]
    refused = [r for r in results if isinstance(r, asyncpg.UniqueViolationError)]
    assert len(made) == 1
    assert len(refused) == 4
    # Another owner's button is another job; a finished job frees the key.
    assert isinstance(await pool.fetchval(enqueue, "u2"), uuid.UUID)
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'completed', finished_at = now() WHERE id = $1", made[0]
    )
    assert isinstance(await pool.fetchval(enqueue, "u1"), uuid.UUID)


@pytest.mark.parametrize("limit", [1, 3])
async def test_the_limit_holds_for_jobs_already_running(pool: asyncpg.Pool, limit: int) -> None:
    for _ in range(10):
        await insert_job(pool, owner="heavy")
    plain, fair = PgJobStore(pool), PgJobStore(pool, max_per_owner=limit)
    # Started before the limit was set (or by a daemon without it).
    await plain.claim("old", 5, LEASE)
    assert await fair.claim("new", 5, LEASE) == []
