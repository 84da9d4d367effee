"""The queue's SQL against real Postgres: claims, leases, guarded updates, reaping."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from exportd import database
from exportd.errors import ErrorKind, ExportError
from exportd.maintenance.reaper import Reaper
from exportd.queue.backoff import BackoffPolicy
from exportd.queue.enqueue import NewJob
from exportd.queue.job import ExportResult, Heartbeat, JobState, LetGo
from exportd.queue.postgres import PgJobStore
from tests.support.helpers import add_history, insert_job, job_row

LEASE = 30.0


async def test_claim_takes_ready_jobs_by_priority_then_age(pool: asyncpg.Pool) -> None:
    low = await insert_job(pool, priority=0)
    high = await insert_job(pool, priority=5)
    later = await insert_job(pool, priority=9, run_after_offset=3600)
    store = PgJobStore(pool)

    first = await store.claim("w1", 1, LEASE)
    second = await store.claim("w1", 5, LEASE)

    assert [j.id for j in first] == [high]
    assert [j.id for j in second] == [low]
    row = await job_row(pool, low)
    assert row["state"] == "processing"
    assert row["attempts"] == 1
    assert row["worker_id"] == "w1"
    assert row["lease_expires_at"] > row["started_at"]
    assert (await job_row(pool, later))["state"] == "pending"


async def test_concurrent_claims_never_share_a_job(pool: asyncpg.Pool) -> None:
    ids = {await insert_job(pool) for _ in range(200)}
    stores = [PgJobStore(pool) for _ in range(4)]
    claimed: list[list[uuid.UUID]] = [[] for _ in stores]

    async def drain(i: int) -> None:
        while batch := await stores[i].claim(f"w{i}", 7, LEASE):
            claimed[i].extend(j.id for j in batch)

    await asyncio.gather(*(drain(i) for i in range(len(stores))))
    everything = [job_id for batch in claimed for job_id in batch]
    assert len(everything) == len(set(everything)) == 200
    assert set(everything) == ids


async def test_claim_uses_the_partial_index(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await insert_job(conn)
        await add_history(conn)
        plan = await conn.fetchval(
            "EXPLAIN (FORMAT JSON) SELECT id FROM exportd.jobs WHERE state = 'pending'"
            " AND run_after <= now() ORDER BY priority DESC, run_after, id LIMIT 10"
            " FOR UPDATE SKIP LOCKED"
        )
    assert "jobs_claim_idx" in json.dumps(plan)


async def test_heartbeat_renews_only_owned_jobs(pool: asyncpg.Pool) -> None:
    mine = await insert_job(pool)
    theirs = await insert_job(pool)
    store = PgJobStore(pool)
    await store.claim("me", 1, LEASE)
    await store.claim("them", 1, LEASE)
    before = (await job_row(pool, mine))["lease_expires_at"]
    await asyncio.sleep(0.01)

    owned = await store.heartbeat(
        "me",
        LEASE,
        [Heartbeat(mine, 1, "user_1", 10, 2048, 40), Heartbeat(theirs, 1, "user_1", 1, 1, 1)],
    )

    assert owned == {mine}
    row = await job_row(pool, mine)
    assert row["lease_expires_at"] > before
    assert (row["rows_written"], row["bytes_written"], row["progress"]) == (10, 2048, 40)
    assert (await job_row(pool, theirs))["rows_written"] == 0


async def test_guarded_updates_refuse_a_job_the_worker_lost(pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool)
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)
    assert await pool.fetchval("SELECT exportd.cancel($1)", job_id) is True

    committed = []

    async def commit() -> ExportResult:
        committed.append(True)
        return ExportResult("k", 1, 1, "0" * 64)

    assert await store.heartbeat("w1", LEASE, [Heartbeat(job_id, 1, "user_1", 0, 0, 0)]) == set()
    assert await store.complete(job, "w1", 60, LEASE, commit) is None
    assert committed == [], "the object must not be committed for a lost job"
    assert await store.retry(job, "w1", 5, "x", ErrorKind.INTERNAL) is None
    assert await store.fail(job, "w1", "x", ErrorKind.INTERNAL) is False
    assert await store.release(job, "w1") is None
    row = await job_row(pool, job_id)
    assert row["state"] == "cancelled"
    assert row["error_kind"] == "cancelled"


async def test_complete_records_the_result(pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool)
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)

    async def commit() -> ExportResult:
        return ExportResult("exports/u/x.csv", 123, 7, "ab" * 32)

    result = await store.complete(job, "w1", 3600, LEASE, commit)

    assert result is not None
    row = await job_row(pool, job_id)
    assert row["state"] == "completed"
    assert row["progress"] == 100
    assert (row["object_key"], row["size_bytes"], row["row_count"]) == ("exports/u/x.csv", 123, 7)
    assert row["checksum_sha256"] == "ab" * 32
    assert row["lease_expires_at"] is None
    delta = row["expires_at"] - row["finished_at"]
    assert delta.total_seconds() == pytest.approx(3600, abs=1)


async def test_retry_moves_run_after_and_release_gives_the_attempt_back(
    pool: asyncpg.Pool,
) -> None:
    job_id = await insert_job(pool)
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)
    went = await store.retry(job, "w1", 120, "S3 down", ErrorKind.STORAGE_UNAVAILABLE)
    assert went is LetGo.PENDING
    row = await job_row(pool, job_id)
    assert row["state"] == "pending"
    assert row["worker_id"] is None
    assert row["error_kind"] == "storage_unavailable"
    wait = await pool.fetchval("SELECT extract(epoch FROM $1 - now())", row["run_after"])
    assert 115 < float(wait) <= 120

    await pool.execute("UPDATE exportd.jobs SET run_after = now() WHERE id = $1", job_id)
    [job] = await store.claim("w2", 1, LEASE)
    assert job.attempt == 2
    assert await store.release(job, "w2") is LetGo.PENDING
    row = await job_row(pool, job_id)
    assert (row["state"], row["attempts"]) == ("pending", 1)


async def test_reaper_returns_expired_leases_with_backoff(pool: asyncpg.Pool) -> None:
    retried = await insert_job(pool, max_attempts=3)
    exhausted = await insert_job(pool, max_attempts=1)
    alive = await insert_job(pool)
    store = PgJobStore(pool)
    await store.claim("dead-worker", 3, LEASE)
    await pool.execute(
        "UPDATE exportd.jobs SET lease_expires_at = now() - interval '1 second' WHERE id = ANY($1)",
        [retried, exhausted],
    )
    reaper = Reaper(PgJobStore(pool), BackoffPolicy(base_seconds=60, max_seconds=600))

    reaped = {r.job_id: r.state for r in await reaper.run_once()}

    assert reaped == {retried: "pending", exhausted: "failed"}
    row = await job_row(pool, retried)
    assert row["error_kind"] == "lease_expired"
    assert "dead-worker" in row["error"]
    assert row["attempts"] == 1, "the claim already counted the attempt"
    wait = await pool.fetchval("SELECT extract(epoch FROM $1 - now())", row["run_after"])
    assert 45 < float(wait) <= 72
    row = await job_row(pool, exhausted)
    assert row["state"] == "failed"
    assert "1 of 1 attempts" in row["error"]
    assert (await job_row(pool, alive))["state"] == "processing"
    assert await reaper.run_once() == []
    counts = {
        state: reaper.metrics.value("exportd_jobs_reaped_total", {"kind": "orders", "state": state})
        for state in ("pending", "failed")
    }
    assert counts == {"pending": 1, "failed": 1}


async def test_reapers_in_several_daemons_reap_each_job_once(pool: asyncpg.Pool) -> None:
    ids = [await insert_job(pool) for _ in range(50)]
    await PgJobStore(pool).claim("dead", 50, LEASE)
    await pool.execute("UPDATE exportd.jobs SET lease_expires_at = now() - interval '1 minute'")
    reapers = [Reaper(PgJobStore(pool), BackoffPolicy(), batch_size=10) for _ in range(4)]

    async def reap(r: Reaper) -> list[uuid.UUID]:
        done: list[uuid.UUID] = []
        for _ in range(100):
            done.extend(x.job_id for x in await r.run_once())
            if not await pool.fetchval(
                "SELECT count(*) FROM exportd.jobs WHERE state = 'processing'"
            ):
                break
            await asyncio.sleep(0.005)
        return done

    results = await asyncio.gather(*(reap(r) for r in reapers))
    everything = [j for batch in results for j in batch]
    assert sorted(everything) == sorted(ids)
    attempts = await pool.fetch("SELECT DISTINCT attempts, state FROM exportd.jobs")
    assert [tuple(r) for r in attempts] == [(1, "pending")]


async def test_terminal_states_are_notified(dsn: str, pool: asyncpg.Pool) -> None:
    listener = await asyncpg.connect(dsn)
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("exportd_events", lambda *a: received.put_nowait(a[3]))
    try:
        job_id = await insert_job(pool, owner="u9", kind="orders")
        await pool.fetchval("SELECT exportd.cancel($1)", job_id)
        payload = json.loads(await asyncio.wait_for(received.get(), 5))
    finally:
        await listener.close()
    assert payload == {"id": str(job_id), "owner": "u9", "kind": "orders", "state": "cancelled"}


async def test_enqueue_function_and_constraints(pool: asyncpg.Pool) -> None:
    job_id = await pool.fetchval(
        "SELECT exportd.enqueue('u1', 'orders', '{\"a\": 1}', 'jsonl', priority => 3::smallint)"
    )
    row = await job_row(pool, job_id)
    assert (row["format"], row["priority"], row["params"]) == ("jsonl", 3, {"a": 1})

    bad = {
        "jobs_params_is_object": "INSERT INTO exportd.jobs (owner, kind, params)"
        " VALUES ('u', 'k', '[1, 2]')",
        "jobs_format_known": "INSERT INTO exportd.jobs (owner, kind, format)"
        " VALUES ('u', 'k', 'xls')",
        "jobs_max_attempts_range": "INSERT INTO exportd.jobs (owner, kind, max_attempts)"
        " VALUES ('u', 'k', 0)",
        "jobs_owner_not_empty": "INSERT INTO exportd.jobs (owner, kind) VALUES ('', 'k')",
        "jobs_state_known": "INSERT INTO exportd.jobs (owner, kind, state)"
        " VALUES ('u', 'k', 'done')",
    }
    for constraint, statement in bad.items():
        with pytest.raises(asyncpg.CheckViolationError) as info:
            await pool.execute(statement)
        assert constraint in str(info.value)


async def test_dedupe_key_allows_one_live_job(pool: asyncpg.Pool) -> None:
    enqueue = "SELECT exportd.enqueue('u1', 'orders', dedupe_key => 'button')"
    first = await pool.fetchval(enqueue)
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.fetchval(enqueue)
    await pool.fetchval("SELECT exportd.cancel($1)", first)
    assert await pool.fetchval(enqueue) != first


async def test_concurrent_migrations_apply_each_migration_once(empty_database: str) -> None:
    from exportd.queue.migrations import migrate
    from exportd.queue.sql import migrations

    async def run() -> list[int]:
        c = await asyncpg.connect(empty_database)
        try:
            return [m.version for m in await migrate(c)]
        finally:
            await c.close()

    results = sorted(await asyncio.gather(run(), run(), run(), run()))
    everything = [m.version for m in migrations()]
    # One run applied everything; the others waited on the lock, then found
    # nothing left to do.
    assert results == [[], [], [], everything]
    assert sorted(await asyncio.gather(run(), run())) == [[], []]


async def test_heartbeat_passes_over_a_locked_row_without_waiting(
    pool: asyncpg.Pool, dsn: str
) -> None:
    locked, free = await insert_job(pool), await insert_job(pool)
    store = PgJobStore(pool)
    await store.claim("w1", 2, LEASE)
    other = await asyncpg.connect(dsn)
    try:
        async with other.transaction():
            await other.execute("SELECT 1 FROM exportd.jobs WHERE id = $1 FOR UPDATE", locked)
            beats = [Heartbeat(locked, 1, "user_1", 0, 0, 0), Heartbeat(free, 1, "user_1", 0, 0, 0)]
            owned = await asyncio.wait_for(store.heartbeat("w1", LEASE, beats), 2)
    finally:
        await other.close()
    assert owned == {free}
    assert await store.state_of(locked) == JobState("processing", "w1", 1, "user_1")


async def test_a_failed_commit_leaves_the_job_owned_with_a_fresh_lease(
    pool: asyncpg.Pool,
) -> None:
    job_id = await insert_job(pool)
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)
    await pool.execute(
        "UPDATE exportd.jobs SET lease_expires_at = now() - interval '1 minute' WHERE id = $1",
        job_id,
    )

    async def commit() -> ExportResult:
        raise ExportError(ErrorKind.STORAGE_UNAVAILABLE, "S3 down")

    with pytest.raises(ExportError):
        await store.complete(job, "w1", 60, LEASE, commit)
    row = await job_row(pool, job_id)
    assert (row["state"], row["worker_id"]) == ("processing", "w1")
    left = await pool.fetchval("SELECT extract(epoch FROM $1 - now())", row["lease_expires_at"])
    assert float(left) > LEASE - 5
    assert await Reaper(PgJobStore(pool), BackoffPolicy()).run_once() == []


def commit_cutting_connections(admin: asyncpg.Connection) -> Callable[[], Awaitable[ExportResult]]:
    """An object commit that succeeds, while every other connection to the database is cut."""

    async def commit() -> ExportResult:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return ExportResult("k", 1, 1, "0" * 64)

    return commit


async def test_a_connection_lost_while_completing_is_a_database_outage(
    dsn: str, pool: asyncpg.Pool
) -> None:
    # What a Postgres restart does to a worker completing a job: its
    # connection dies between the commit of the object and the update. The
    # job must be retried as an outage (database_unavailable), not reported
    # as an unexpected crash of the daemon's own code.
    job_id = await insert_job(pool)
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)
    admin = await database.connect(dsn)

    commit = commit_cutting_connections(admin)

    try:
        with pytest.raises(ExportError) as info:
            await store.complete(job, "w1", 60, LEASE, commit)
    finally:
        await admin.close()
    assert info.value.kind is ErrorKind.DATABASE_UNAVAILABLE
    assert "recording the completion" in info.value.message
    row = await job_row(pool, job_id)
    assert (row["state"], row["worker_id"]) == ("processing", "w1")


async def test_a_stale_claim_of_the_same_worker_cannot_act_on_a_new_claim(
    pool: asyncpg.Pool,
) -> None:
    job_id = await insert_job(pool)
    store = PgJobStore(pool)
    [first] = await store.claim("w1", 1, LEASE)
    # The job is handed back behind the worker's back, and claimed by it again.
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'pending', worker_id = NULL, lease_expires_at = NULL"
        " WHERE id = $1",
        job_id,
    )
    [second] = await store.claim("w1", 1, LEASE)
    assert (first.attempt, second.attempt) == (1, 2)

    assert not await store.fail(first, "w1", "stale", ErrorKind.INTERNAL)
    assert await store.release(first, "w1") is None
    assert await store.heartbeat("w1", LEASE, [Heartbeat(job_id, 1, "user_1", 0, 0, 0)]) == set()
    assert await store.heartbeat("w1", LEASE, [Heartbeat(job_id, 2, "user_1", 0, 0, 0)]) == {job_id}
    state = await store.state_of(job_id)
    assert state is not None
    assert state.held_by("w1", 2, "user_1")
    assert not state.held_by("w1", 1, "user_1")
    assert await store.release(second, "w1") is LetGo.PENDING


async def test_heartbeat_is_not_kept_waiting_by_a_busy_queue_pool(
    pool: asyncpg.Pool, dsn: str
) -> None:
    job_id = await insert_job(pool)
    queue = await database.create_pool(dsn, min_size=1, max_size=1)
    beats = await database.create_pool(dsn, min_size=1, max_size=1)
    try:
        store = PgJobStore(queue, heartbeat_pool=beats)
        [job] = await store.claim("w1", 1, LEASE)
        before = (await job_row(pool, job_id))["lease_expires_at"]
        # Every queue connection held, as by completions waiting on a slow bucket.
        async with queue.acquire():
            owned = await asyncio.wait_for(
                store.heartbeat("w1", LEASE, [Heartbeat(job.id, job.claim, "user_1", 0, 0, 0)]), 5
            )
        assert owned == {job_id}
        assert (await job_row(pool, job_id))["lease_expires_at"] > before
    finally:
        await queue.close()
        await beats.close()


async def test_completions_that_arrive_together_share_one_transaction(
    pool: asyncpg.Pool,
) -> None:
    for _ in range(4):
        await insert_job(pool)
    store = PgJobStore(pool)
    good_a, good_b, failing, lost = await store.claim("w1", 4, LEASE)
    assert await pool.fetchval("SELECT exportd.cancel($1)", lost.id) is True
    committed: list[uuid.UUID] = []

    def commit_of(job_id: uuid.UUID) -> Callable[[], Awaitable[ExportResult]]:
        async def commit() -> ExportResult:
            committed.append(job_id)
            if job_id == failing.id:
                raise ExportError(ErrorKind.STORAGE_UNAVAILABLE, "S3 down")
            return ExportResult(f"k/{job_id}", 10, 1, "cd" * 32)

        return commit

    outcomes = await asyncio.gather(
        *(
            store.complete(job, "w1", 3600, LEASE, commit_of(job.id))
            for job in (good_a, good_b, failing, lost)
        ),
        return_exceptions=True,
    )

    assert [type(o) for o in outcomes] == [ExportResult, ExportResult, ExportError, type(None)]
    assert sorted(committed) == sorted([good_a.id, good_b.id, failing.id]), (
        "no object is committed for a lost job"
    )
    rows = {
        r["id"]: r
        for r in await pool.fetch(
            # updated_at is the updating transaction's start (now()), the same
            # in each of its savepoints, where xmin would name the savepoint.
            "SELECT id, state, object_key, lease_expires_at, updated_at AS tx FROM exportd.jobs"
        )
    }
    assert rows[good_a.id]["state"] == rows[good_b.id]["state"] == "completed"
    assert rows[good_a.id]["object_key"] == f"k/{good_a.id}"
    assert rows[good_a.id]["tx"] == rows[good_b.id]["tx"] == rows[failing.id]["tx"], (
        "one transaction completed the batch and renewed the failed job's lease"
    )
    assert rows[failing.id]["state"] == "processing"
    left = await pool.fetchval(
        "SELECT extract(epoch FROM $1 - now())", rows[failing.id]["lease_expires_at"]
    )
    assert float(left) > LEASE - 5
    assert rows[lost.id]["state"] == "cancelled"


async def test_a_completion_alone_is_not_held_back(pool: asyncpg.Pool) -> None:
    await insert_job(pool)
    await insert_job(pool)
    store = PgJobStore(pool)
    first, second = await store.claim("w1", 2, LEASE)

    async def commit() -> ExportResult:
        return ExportResult("k", 1, 1, "0" * 64)

    assert await store.complete(first, "w1", 60, LEASE, commit) is not None
    assert (await job_row(pool, first.id))["state"] == "completed"
    assert (await job_row(pool, second.id))["state"] == "processing"


async def test_every_job_of_a_batch_whose_connection_is_lost_gets_the_outage(
    dsn: str, pool: asyncpg.Pool
) -> None:
    await insert_job(pool)
    await insert_job(pool)
    store = PgJobStore(pool)
    first, second = await store.claim("w1", 2, LEASE)
    admin = await database.connect(dsn)

    commit = commit_cutting_connections(admin)

    try:
        outcomes = await asyncio.gather(
            store.complete(first, "w1", 60, LEASE, commit),
            store.complete(second, "w1", 60, LEASE, commit),
            return_exceptions=True,
        )
    finally:
        await admin.close()
    for outcome in outcomes:
        assert isinstance(outcome, ExportError)
        assert outcome.kind is ErrorKind.DATABASE_UNAVAILABLE
    rows = await pool.fetch("SELECT state, worker_id FROM exportd.jobs")
    assert [(r["state"], r["worker_id"]) for r in rows] == [("processing", "w1")] * 2


async def test_a_job_left_to_its_defaults_is_the_same_by_every_door(pool: asyncpg.Pool) -> None:
    # NewJob's defaults (the API's and the CLI's) are the table's and
    # exportd.enqueue()'s, which an application inserting by SQL gets.
    enqueued = await PgJobStore(pool).enqueue(NewJob("u1", "orders"))
    by_function = await pool.fetchval("SELECT exportd.enqueue('u2', 'orders')")
    by_insert = await pool.fetchval(
        "INSERT INTO exportd.jobs (owner, kind) VALUES ('u3', 'orders') RETURNING id"
    )
    columns = ("params", "format", "priority", "max_attempts", "dedupe_key")
    rows = [enqueued.row, await job_row(pool, by_function), await job_row(pool, by_insert)]
    assert enqueued.created
    assert [tuple(r[c] for c in columns) for r in rows] == [({}, "csv", 0, 5, None)] * 3
    assert all(r["run_after"] <= r["created_at"] for r in rows)


async def test_the_store_says_an_object_is_committed_before_its_row_is_recorded(
    pool: asyncpg.Pool,
) -> None:
    # The worker frees a job's slot on the first answer, while the row is still
    # being recorded: the real store must give that answer at that moment.
    job_id = await insert_job(pool)
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)
    # The row's update waits on an advisory lock the test holds, so "the
    # object is committed, the row is not yet recorded" lasts exactly as long
    # as the test looks at it.
    await pool.execute(
        """
        CREATE FUNCTION public.held_completion() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.state = 'completed' THEN PERFORM pg_advisory_xact_lock(4242); END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER held_completion BEFORE UPDATE ON exportd.jobs
            FOR EACH ROW EXECUTE FUNCTION public.held_completion();
        """
    )

    async def commit() -> ExportResult:
        return ExportResult("exports/u/x.csv", 123, 7, "ab" * 32)

    async with pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock(4242)")
        completing = store.begin_completion(job, "w1", 60, LEASE, commit)
        assert await completing.committed is True
        assert not completing.outcome.done()
        assert (await job_row(pool, job_id))["state"] == "processing"
        await holder.execute("SELECT pg_advisory_unlock(4242)")
    result = await completing.outcome
    assert result is not None
    assert (await job_row(pool, job_id))["state"] == "completed"
