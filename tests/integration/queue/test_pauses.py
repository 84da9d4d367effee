"""Paused kinds against real Postgres: what the claim leaves out, for how long, and
what a pause never stops (a job already running)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from exportd import database
from exportd.queue.job import ExportResult
from exportd.queue.pauses import ALL_KINDS, PauseRefused
from exportd.queue.postgres import PgJobStore
from exportd.queue.sql import queries
from tests.support.helpers import insert_job, job_row, plan_nodes

LEASE = 30.0


async def _claimed_kinds(store: PgJobStore, limit: int = 50) -> list[str]:
    return sorted(j.kind for j in await store.claim("w1", limit, LEASE))


@pytest.mark.parametrize("per_owner", [None, 5], ids=["unlimited", "per-owner"])
async def test_a_paused_kinds_jobs_wait_while_other_kinds_are_claimed(
    pool: asyncpg.Pool, per_owner: int | None
) -> None:
    store = PgJobStore(pool, max_per_owner=per_owner)
    orders = [await insert_job(pool, kind="orders") for _ in range(3)]
    await insert_job(pool, kind="invoices")
    await store.pause_kind("orders", paused_by="test")

    assert await _claimed_kinds(store) == ["invoices"]
    assert await _claimed_kinds(store) == []
    assert {(await job_row(pool, i))["state"] for i in orders} == {"pending"}

    assert (await store.resume_kind("orders", resumed_by="test")) is not None
    assert await _claimed_kinds(store) == ["orders"] * 3


async def test_pausing_every_kind_stops_every_claim_until_every_kind_is_resumed(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    await insert_job(pool, kind="orders")
    await insert_job(pool, kind="invoices")
    await store.pause_kind("orders", paused_by="test", reason="source down")
    await store.pause_kind(ALL_KINDS, paused_by="test")
    assert await _claimed_kinds(store) == []

    # A kind's own resume leaves it held by the pause of every kind.
    await store.resume_kind("invoices", resumed_by="test")
    assert await _claimed_kinds(store) == []
    # Resuming the pause of every kind alone leaves orders' own pause.
    await store.resume_kind(ALL_KINDS, resumed_by="test")
    assert await _claimed_kinds(store) == ["invoices"]

    await store.pause_kind(ALL_KINDS, paused_by="test")
    lifted = await store.resume_all_kinds(resumed_by="test")
    assert [p.kind for p in lifted] == [ALL_KINDS, "orders"]
    assert await _claimed_kinds(store) == ["orders"]
    assert await store.paused_kinds() == []


async def test_a_pause_outlives_the_store_and_its_connections(dsn: str) -> None:
    first = await database.create_pool(dsn, min_size=1, max_size=2)
    try:
        await insert_job(first, kind="orders")
        await PgJobStore(first).pause_kind("orders", paused_by="test", reason="why")
    finally:
        await first.close()
    # As a daemon restarted, or another daemon: a new pool, a new store.
    second = await database.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = PgJobStore(second)
        assert await _claimed_kinds(store) == []
        [pause] = await store.paused_kinds()
        assert (pause.kind, pause.paused_by, pause.reason) == ("orders", "test", "why")
    finally:
        await second.close()


async def test_a_job_running_when_its_kind_is_paused_completes(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    job_id = await insert_job(pool, kind="orders")
    [job] = await store.claim("w1", 1, LEASE)
    await store.pause_kind("orders", paused_by="test")
    waiting = await insert_job(pool, kind="orders")

    async def commit() -> ExportResult:
        return ExportResult("exports/k", 10, 1, "0" * 64)

    assert await store.complete(job, "w1", 3600, LEASE, commit) is not None
    assert (await job_row(pool, job_id))["state"] == "completed"
    assert (await job_row(pool, waiting))["state"] == "pending"


async def test_a_paused_backlog_at_the_head_of_the_queue_never_hides_ready_jobs(
    pool: asyncpg.Pool,
) -> None:
    # The LIMIT counts the rows the claim may take, after the filter.
    await pool.execute(
        "INSERT INTO exportd.jobs (owner, kind, priority)"
        " SELECT 'o' || (g % 10), 'orders', 9 FROM generate_series(1, 1000) AS g"
    )
    await pool.execute("ANALYZE exportd.jobs")
    store = PgJobStore(pool)
    await store.pause_kind("orders", paused_by="test")
    behind = await insert_job(pool, kind="invoices", priority=0)

    started = time.perf_counter()
    claimed = await store.claim("w1", 1, LEASE)
    elapsed = time.perf_counter() - started

    assert [j.id for j in claimed] == [behind]
    assert elapsed < 2.0  # walking 1,000 index entries, not a scan per row
    # The row-by-row retry of a failed claim considers the same rows.
    await insert_job(pool, kind="invoices")
    candidates = await pool.fetch(queries()["claim_candidates"], 5, [])
    kinds = {(await job_row(pool, r["id"]))["kind"] for r in candidates}
    assert kinds == {"invoices"}


async def test_pausing_twice_keeps_the_first_pause(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    first, created = await store.pause_kind("orders", paused_by="alice", reason="first")
    await asyncio.sleep(0.01)
    again, created_again = await store.pause_kind("orders", paused_by="bob", reason="second")
    assert (created, created_again) == (True, False)
    assert again == first
    assert await store.resume_kind("orders", resumed_by="bob") == first
    assert await store.resume_kind("orders", resumed_by="bob") is None


async def test_resuming_wakes_idle_daemons(dsn: str, pool: asyncpg.Pool) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(dsn)
    try:
        await listener.add_listener("exportd_jobs", lambda *args: heard.put_nowait(args[3]))
        store = PgJobStore(pool)
        await store.pause_kind("orders", paused_by="test")
        await store.resume_kind("orders", resumed_by="test")
        assert await asyncio.wait_for(heard.get(), 5) == "pending"
        # One wake-up per resume, however many pauses it lifts.
        await store.pause_kind("orders", paused_by="test")
        await store.pause_kind("invoices", paused_by="test")
        await store.resume_all_kinds(resumed_by="test")
        assert await asyncio.wait_for(heard.get(), 5) == "pending"
        await asyncio.sleep(0.2)
        assert heard.empty()
    finally:
        await listener.close()


@pytest.mark.parametrize(
    ("kind", "paused_by", "reason", "constraint"),
    [
        ("Orders", "x", None, "paused_kinds_kind_name"),
        ("", "x", None, "paused_kinds_kind_name"),
        ("k" * 129, "x", None, "paused_kinds_kind_bytes"),
        ("orders", "", None, "paused_kinds_paused_by_bytes"),
        ("orders", "é" * 129, None, "paused_kinds_paused_by_bytes"),
        ("orders", "x", "é" * 513, "paused_kinds_reason_bytes"),
        ("orders", "x", "", "paused_kinds_reason_bytes"),
    ],
)
async def test_the_table_refuses_what_no_pause_may_hold_by_name(
    pool: asyncpg.Pool, kind: str, paused_by: str, reason: str | None, constraint: str
) -> None:
    # As an operator writing the table by hand would.
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await pool.execute(
            "INSERT INTO exportd.paused_kinds (kind, paused_by, reason) VALUES ($1, $2, $3)",
            kind,
            paused_by,
            reason,
        )
    assert refused.value.constraint_name == constraint
    # The store refuses the same before it asks the table.
    with pytest.raises(PauseRefused):
        await PgJobStore(pool).pause_kind(kind, paused_by=paused_by, reason=reason)


@pytest.mark.parametrize("paused", [0, 1, 50], ids=["none", "one", "fifty"])
async def test_the_claim_walks_the_claim_index_whatever_is_paused(
    pool: asyncpg.Pool, paused: int
) -> None:
    # A backlog of one kind, and other kinds paused: with statistics that say
    # so, a check of the kind column (or a join on it) is estimated to let
    # almost no row through, and the planner sorts the whole backlog instead
    # of walking the index (40 times slower at this size).
    await pool.execute(
        "INSERT INTO exportd.jobs (owner, kind) SELECT 'o' || (g % 100), 'orders'"
        " FROM generate_series(1, 20000) AS g"
    )
    await pool.execute(
        "INSERT INTO exportd.paused_kinds (kind, paused_by)"
        " SELECT 'k' || g, 'test' FROM generate_series(1, $1::int) AS g",
        paused,
    )
    await pool.execute("ANALYZE exportd.jobs")
    await pool.execute("ANALYZE exportd.paused_kinds")
    plan = await pool.fetchval(
        "EXPLAIN (FORMAT JSON) " + queries()["claim"], "w", 4, LEASE, None, None, []
    )
    on_jobs = {
        (n["Node Type"], n.get("Index Name"))
        for n in plan_nodes(plan)
        if n.get("Relation Name") == "jobs" and "Scan" in n["Node Type"]
    }
    assert on_jobs == {("Index Scan", "jobs_claim_idx"), ("Index Scan", "jobs_pkey")}
