"""The worker's quota decision, with the queue faked at the ``JobStore`` Protocol:
a job over its kind's quota fails for good before the runner sees it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from exportd.export.interface import JobContext
from exportd.queue.job import ExportResult
from exportd.quotas import Quota
from exportd.worker.loop import Worker, WorkerConfig
from tests.support.fake_store import FakeStore, make_job

ONE_A_DAY = Quota(1, timedelta(days=1), "P1D")


@dataclass
class Prepared:
    async def commit(self) -> ExportResult:
        return ExportResult("key", 1, 1, "0" * 64)

    async def abort(self) -> None:
        return None


@dataclass
class Runner:
    started: list[uuid.UUID] = field(default_factory=list)

    async def run(self, ctx: JobContext) -> Prepared:
        self.started.append(ctx.job.id)
        return Prepared()


async def run_jobs(store: FakeStore, runner: Runner, worker: Worker, ended: int) -> None:
    task = asyncio.create_task(worker.run(5))

    async def settled() -> None:
        while len([c for c, _ in store.calls if c != "quota"]) < ended:
            await asyncio.sleep(0.005)

    await asyncio.wait_for(settled(), 5)
    worker.request_stop()
    await asyncio.wait_for(task, 5)


def config() -> WorkerConfig:
    return WorkerConfig(concurrency=2, lease_seconds=0.3, poll_interval=0.02)


async def test_a_job_over_its_quota_fails_for_good_without_running() -> None:
    over, within = make_job(), make_job()
    when = datetime(2025, 1, 2, 6, tzinfo=UTC)
    store = FakeStore(ready=[over, within], over_quota={over.id: when})
    runner = Runner()
    worker = Worker(store, runner, config(), quota_of={"k": ONE_A_DAY}.get)
    await run_jobs(store, runner, worker, ended=2)
    assert ("fail:quota_exceeded", over.id) in store.calls
    assert ("complete", within.id) in store.calls
    assert runner.started == [within.id]
    labels = {"kind": "k", "error_kind": "quota_exceeded"}
    assert worker.metrics.value("exportd_jobs_failed_total", labels) == 1
    assert worker.metrics.value("exportd_jobs_retried_total", labels) == 0


async def test_a_kind_without_a_quota_is_never_counted() -> None:
    job = make_job()
    store = FakeStore(ready=[job], over_quota={job.id: datetime.now(UTC)})
    runner = Runner()
    worker = Worker(store, runner, config(), quota_of={"other": ONE_A_DAY}.get)
    await run_jobs(store, runner, worker, ended=1)
    assert store.calls == [("complete", job.id)]
    assert runner.started == [job.id]


async def test_a_count_that_fails_is_retried_as_a_database_outage() -> None:
    job = make_job()
    store = FakeStore(ready=[job], quota_error=OSError("connection reset"))
    runner = Runner()
    worker = Worker(store, runner, config(), quota_of={"k": ONE_A_DAY}.get)
    await run_jobs(store, runner, worker, ended=1)
    assert store.calls == [("quota", job.id), ("retry:database_unavailable", job.id)]
    assert runner.started == []
