"""The daemons' rows in exportd.workers against real Postgres: announced, alive
while their heartbeat is recent, retired, pruned once stale; each with the
jobs exportd.jobs says it runs."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from exportd import limits
from exportd.maintenance.runner import tick
from exportd.maintenance.workers_prune import WorkersPrune
from exportd.queue.job import Heartbeat
from exportd.queue.postgres import PgJobStore
from exportd.queue.sql import migrations, queries
from exportd.queue.workers import STALE_BEATS, WorkerIdentity
from tests.support.helpers import insert_job

LEASE = 30.0


def identity(worker_id: str = "host-a:101:abcd", **changes: object) -> WorkerIdentity:
    fields: dict[str, object] = {
        "worker_id": worker_id,
        "version": "1.2.3",
        "host": "host-a",
        "pid": 101,
        "started_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "concurrency": 4,
        "heartbeat_seconds": 10.0,
    }
    fields.update(changes)
    return WorkerIdentity(**fields)  # type: ignore[arg-type]


async def _age(pool: asyncpg.Pool, worker_id: str, seconds: float) -> None:
    """Make the row's last heartbeat ``seconds`` old."""
    await pool.execute(
        "UPDATE exportd.workers SET last_heartbeat_at = now() - make_interval(secs => $2)"
        " WHERE id = $1",
        worker_id,
        seconds,
    )


async def test_an_announced_daemon_is_alive_with_the_jobs_it_runs(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    me = identity()
    await store.announce_worker(me)
    await store.announce_worker(identity("host-b:7:ffff", host="host-b", pid=7))
    job_ids = {await insert_job(pool, kind="orders"), await insert_job(pool, kind="invoices")}
    await insert_job(pool, kind="later", run_after_offset=3600)  # pending: not running
    claimed = await store.claim(me.worker_id, 5, LEASE)
    assert {j.id for j in claimed} == job_ids

    found = {w.worker_id: w for w in await store.workers()}

    assert set(found) == {me.worker_id, "host-b:7:ffff"}
    mine = found[me.worker_id]
    assert (mine.version, mine.host, mine.pid, mine.concurrency) == ("1.2.3", "host-a", 101, 4)
    assert mine.started_at == me.started_at
    assert mine.heartbeat_seconds == 10.0
    assert {(j.id, j.kind, j.worker_id) for j in mine.running} == {
        (j.id, j.kind, me.worker_id) for j in claimed
    }
    assert all(j.progress == 0 and j.attempts == 1 for j in mine.running)
    assert found["host-b:7:ffff"].running == ()


async def test_progress_of_every_running_job_comes_from_its_heartbeat(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    await insert_job(pool)
    [job] = await store.claim("w1", 1, LEASE)

    await store.heartbeat("w1", LEASE, [Heartbeat(job.id, job.claim, job.owner, 120, 4096, 42)])

    [running] = await store.running_jobs()

    assert (running.id, running.worker_id) == (job.id, "w1")
    assert (running.rows_written, running.bytes_written, running.progress) == (120, 4096, 42)


async def test_a_daemon_whose_heartbeats_stopped_is_not_alive_and_is_pruned(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    await store.announce_worker(identity("gone", heartbeat_seconds=10.0))
    await store.announce_worker(identity("slow", heartbeat_seconds=60.0))
    await store.announce_worker(identity("here", heartbeat_seconds=10.0))
    # Past three of its 10 s beats; "slow" is as late, within three of its own 60 s beats.
    await _age(pool, "gone", STALE_BEATS * 10.0 + 1)
    await _age(pool, "slow", STALE_BEATS * 10.0 + 1)

    alive = {w.worker_id: w for w in await store.workers()}
    assert sorted(alive) == ["here", "slow"]
    # The heartbeat's age, by the database's clock.
    assert STALE_BEATS * 10.0 + 1 <= alive["slow"].heartbeat_age_seconds < 3600
    assert alive["here"].heartbeat_age_seconds < alive["slow"].heartbeat_age_seconds
    assert await store.prune_workers() == 1
    ids = await pool.fetch("SELECT id FROM exportd.workers ORDER BY id")
    assert [r["id"] for r in ids] == ["here", "slow"]


async def test_a_heartbeat_brings_back_a_pruned_row_and_retire_deletes_it(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    me = identity()
    await store.announce_worker(me)
    await _age(pool, me.worker_id, 3600)
    assert await store.prune_workers() == 1
    assert await store.workers() == []

    await store.announce_worker(me)  # the next beat
    assert [w.worker_id for w in await store.workers()] == [me.worker_id]

    assert await store.retire_worker(me.worker_id) is True
    assert await store.workers() == []
    assert await store.retire_worker(me.worker_id) is False


async def test_host_and_version_are_cut_to_their_bounds_in_whole_characters(
    pool: asyncpg.Pool,
) -> None:
    store = PgJobStore(pool)
    await store.announce_worker(identity(host="h" + "é" * 300, version="v" * 100))

    [found] = await store.workers()

    # 1 + 2 * 127 = 255 bytes: the next "é" would not fit whole.
    assert found.host == "h" + "é" * 127
    assert found.version == "v" * limits.WORKER_VERSION_MAX_BYTES


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("id", "x" * (limits.WORKER_ID_MAX_BYTES + 1), "workers_id_bytes"),
        ("host", "h" * (limits.WORKER_HOST_MAX_BYTES + 1), "workers_host_bytes"),
        ("version", "v" * (limits.WORKER_VERSION_MAX_BYTES + 1), "workers_version_bytes"),
        ("host", "", "workers_host_bytes"),
    ],
)
async def test_the_table_refuses_strings_over_their_bounds(
    pool: asyncpg.Pool, column: str, value: str, constraint: str
) -> None:
    row = {"id": "w", "version": "1", "host": "h"} | {column: value}
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await pool.execute(
            "INSERT INTO exportd.workers (id, version, host, pid, started_at, concurrency,"
            " heartbeat_seconds) VALUES ($1, $2, $3, 1, now(), 1, 10)",
            row["id"],
            row["version"],
            row["host"],
        )
    assert refused.value.constraint_name == constraint


def test_the_migration_holds_the_limits_and_the_stale_rule() -> None:
    [sql] = [m.sql for m in migrations() if m.name == "workers"]
    assert f"octet_length(id) <= {limits.WORKER_ID_MAX_BYTES}" in sql
    assert f"octet_length(host) <= {limits.WORKER_HOST_MAX_BYTES}" in sql
    assert f"octet_length(version) <= {limits.WORKER_VERSION_MAX_BYTES}" in sql
    for name in ("workers_alive", "workers_prune"):
        assert f"secs => {STALE_BEATS} * heartbeat_seconds" in queries()[name]


async def test_maintenance_prunes_the_rows_of_daemons_gone(pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    await store.announce_worker(identity("gone"))
    await store.announce_worker(identity("here"))
    await _age(pool, "gone", 3600)

    assert await tick(WorkersPrune(store)) == 1

    assert [r["id"] for r in await pool.fetch("SELECT id FROM exportd.workers")] == ["here"]
