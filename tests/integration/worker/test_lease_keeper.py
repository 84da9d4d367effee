"""The lease keeper over real Postgres: a job whose own completion holds its row
while the lease is renewed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import asyncpg
import structlog

from exportd.metrics import Metrics
from exportd.queue.job import Heartbeat, Progress
from exportd.queue.postgres import PgJobStore
from exportd.worker.lease_keeper import LeaseKeeper
from exportd.worker.running import RunningJob, StopReason
from tests.support.helpers import insert_job, job_row

LEASE = 30.0


class CommitsAfterTheBeat(PgJobStore):
    """The real store; once its heartbeat has passed over the locked row, the
    transaction holding that row (the job's completion) commits."""

    completion: asyncpg.Connection

    async def heartbeat(
        self, worker_id: str, lease_seconds: float, beats: Sequence[Heartbeat]
    ) -> set[uuid.UUID]:
        owned = await super().heartbeat(worker_id, lease_seconds, beats)
        await self.completion.execute("COMMIT")
        return owned


async def test_a_job_completing_during_its_renewal_is_neither_stopped_nor_lost(
    pool: asyncpg.Pool, dsn: str
) -> None:
    store = CommitsAfterTheBeat(pool)
    job_id = await insert_job(pool)
    [job] = await store.claim("w1", 1, LEASE)
    running = RunningJob(job, Progress(), time.monotonic(), structlog.get_logger())
    # The heartbeat loop took the job as live; then the worker handed it over to
    # be completed, and the completing transaction locked and updated its row.
    live = [running]
    running.finishing = True
    store.completion = await asyncpg.connect(dsn)
    try:
        await store.completion.execute("BEGIN")
        await store.completion.execute(
            "SELECT 1 FROM exportd.jobs WHERE id = $1 FOR UPDATE", job_id
        )
        await store.completion.execute(
            "UPDATE exportd.jobs SET state = 'completed', lease_expires_at = NULL,"
            " finished_at = now() WHERE id = $1",
            job_id,
        )
        metrics = Metrics()
        stopped: list[StopReason] = []

        def stop(_: RunningJob, why: StopReason) -> None:
            stopped.append(why)

        await LeaseKeeper(store, "w1", LEASE, metrics, structlog.get_logger()).renew(live, stop)
    finally:
        await store.completion.close()

    assert (await job_row(pool, job_id))["state"] == "completed", "the completion committed"
    assert stopped == []
    assert metrics.value("exportd_lease_renewals_lost_total") == 0


async def test_a_job_whose_row_is_only_locked_is_kept_and_renewed_next_time(
    pool: asyncpg.Pool, dsn: str
) -> None:
    store = PgJobStore(pool)
    job_id = await insert_job(pool)
    [job] = await store.claim("w1", 1, LEASE)
    claimed_at = time.monotonic()
    running = RunningJob(job, Progress(), claimed_at, structlog.get_logger())
    stopped: list[StopReason] = []
    leases = LeaseKeeper(store, "w1", LEASE, Metrics(), structlog.get_logger())
    other = await asyncpg.connect(dsn)
    try:
        async with other.transaction():
            await other.execute("SELECT 1 FROM exportd.jobs WHERE id = $1 FOR UPDATE", job_id)
            await leases.renew([running], lambda _, why: stopped.append(why))
        assert running.renewal_sent == claimed_at, "passed over while locked"
        await leases.renew([running], lambda _, why: stopped.append(why))
    finally:
        await other.close()

    assert stopped == []
    assert running.renewal_sent > claimed_at
