"""The worker loop alone, with the queue faked at the ``JobStore`` Protocol.

The SQL behind the real store is tested against Postgres elsewhere; here the
fake only records what the loop asked for, so the loop's own decisions
(slots, leases, stop reasons, outcomes) are tested quickly and exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from exportd.errors import ErrorKind, ExportError
from exportd.export.interface import JobContext
from exportd.queue.backoff import BackoffPolicy
from exportd.queue.job import ExportResult, Heartbeat, Job
from exportd.worker.loop import Worker, WorkerConfig
from tests.support.fake_store import FakeStore, make_job


@dataclass
class Prepared:
    runner: FakeRunner
    job_id: uuid.UUID

    async def commit(self) -> ExportResult:
        self.runner.committed.append(self.job_id)
        return ExportResult("key", 1, 1, "0" * 64)

    async def abort(self) -> None:
        self.runner.aborted.append(self.job_id)


@dataclass
class FakeRunner:
    """Runs each job for ``seconds``, or raises ``error``; records what happened."""

    seconds: float = 0.0
    error: BaseException | None = None
    running: int = 0
    peak: int = 0
    started: list[uuid.UUID] = field(default_factory=list)
    committed: list[uuid.UUID] = field(default_factory=list)
    aborted: list[uuid.UUID] = field(default_factory=list)
    cancelled: list[uuid.UUID] = field(default_factory=list)

    async def run(self, ctx: JobContext) -> Prepared:
        self.started.append(ctx.job.id)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.seconds)
            if self.error is not None:
                raise self.error
            ctx.progress.rows += 1
            return Prepared(self, ctx.job.id)
        except asyncio.CancelledError:
            # A runner aborts its own upload when it is interrupted.
            self.cancelled.append(ctx.job.id)
            self.aborted.append(ctx.job.id)
            raise
        finally:
            self.running -= 1


async def hang_until_cancelled(runner: FakeRunner, ctx: JobContext) -> None:
    """An export that never ends by itself; records its cancellation."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        runner.cancelled.append(ctx.job.id)
        raise


def config(**kw: float) -> WorkerConfig:
    base: dict[str, object] = {
        "concurrency": 3,
        "lease_seconds": 0.3,
        "poll_interval": 0.02,
        "backoff": BackoffPolicy(base_seconds=10, max_seconds=100, jitter=0.2),
    }
    base.update(kw)
    return WorkerConfig(**base)  # type: ignore[arg-type]


async def run_until(worker: Worker, done: asyncio.Future[None] | None, grace: float = 5.0) -> None:
    task = asyncio.create_task(worker.run(grace))
    if done is not None:
        await asyncio.wait_for(done, 10)
    worker.request_stop()
    await asyncio.wait_for(task, 10)


async def until(predicate: object, timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def test_runs_every_job_with_at_most_concurrency_at_once() -> None:
    store = FakeStore(ready=[make_job() for _ in range(10)])
    runner = FakeRunner(seconds=0.03)
    worker = Worker(store, runner, config(concurrency=3))
    task = asyncio.create_task(worker.run(5))
    await until(lambda: len(runner.committed) == 10)
    worker.request_stop()
    await task
    assert runner.peak == 3
    assert sorted(c for c, _ in store.calls) == ["complete"] * 10
    m = worker.metrics
    assert m.value("exportd_jobs_claimed_total", {"kind": "k"}) == 10
    assert m.value("exportd_jobs_completed_total", {"kind": "k"}) == 10
    assert m.value("exportd_export_duration_seconds_count", {"kind": "k"}) == 10
    assert m.value("exportd_bytes_exported_total", {"kind": "k"}) == 10  # 1 byte each
    assert m.value("exportd_rows_exported_total", {"kind": "k"}) == 10
    assert m.value("exportd_jobs_in_flight") == 0


async def test_permanent_error_fails_at_once() -> None:
    job = make_job(attempt=1)
    store = FakeStore(ready=[job])
    runner = FakeRunner(error=ExportError(ErrorKind.INVALID_PARAMS, "bad"))
    worker = Worker(store, runner, config())
    task = asyncio.create_task(worker.run(5))
    await until(lambda: store.calls)
    worker.request_stop()
    await task
    assert store.calls == [("fail:invalid_params", job.id)]
    labels = {"kind": "k", "error_kind": "invalid_params"}
    assert worker.metrics.value("exportd_jobs_failed_total", labels) == 1
    assert worker.metrics.value("exportd_jobs_retried_total", labels) == 0


async def test_retryable_error_retries_with_backoff_until_attempts_are_spent() -> None:
    early, last = make_job(attempt=2, max_attempts=5), make_job(attempt=5, max_attempts=5)
    store = FakeStore(ready=[early, last])
    runner = FakeRunner(error=ExportError(ErrorKind.STORAGE_UNAVAILABLE, "S3 down"))
    worker = Worker(store, runner, config())
    task = asyncio.create_task(worker.run(5))
    await until(lambda: len(store.calls) == 2)
    worker.request_stop()
    await task
    assert sorted(store.calls) == sorted(
        [("retry:storage_unavailable", early.id), ("fail:storage_unavailable", last.id)]
    )
    # Attempt 2 failed: the nominal delay is base * 2, jittered by 20 %.
    assert store.retry_delays == [pytest.approx(20, rel=0.2)]
    labels = {"kind": "k", "error_kind": "storage_unavailable"}
    assert worker.metrics.value("exportd_jobs_retried_total", labels) == 1
    assert worker.metrics.value("exportd_jobs_failed_total", labels) == 1
    assert worker.metrics.value("exportd_s3_errors_total", {"operation": "export"}) == 2


async def test_a_retry_or_release_the_store_turned_into_a_failure_is_logged_failed() -> None:
    # The application lowered max_attempts while these ran: the worker retries
    # one and hands the other back at shutdown, and the store fails both. The
    # log and the metrics must say failed, not retried or released.
    from structlog.testing import capture_logs

    retried, released = make_job(), make_job()
    store = FakeStore(ready=[retried, released], no_attempt_left={retried.id, released.id})
    runner = FakeRunner()

    async def run(ctx: JobContext) -> Prepared:
        runner.started.append(ctx.job.id)
        if ctx.job.id == retried.id:
            raise ExportError(ErrorKind.STORAGE_UNAVAILABLE, "S3 down")
        await hang_until_cancelled(runner, ctx)
        raise AssertionError("not cancelled")

    runner.run = run  # type: ignore[method-assign]
    with capture_logs() as logs:
        worker = Worker(store, runner, config(lease_seconds=60))
        task = asyncio.create_task(worker.run(grace_seconds=0.05))
        await until(lambda: ("retry:storage_unavailable", retried.id) in store.calls)
        worker.request_stop()
        await asyncio.wait_for(task, 5)
    assert ("release", released.id) in store.calls
    ends = {
        (e["job_id"], e["event"]) for e in logs if "job_id" in e and e["event"] != "job_started"
    }
    assert ends == {(str(retried.id), "job_failed"), (str(released.id), "job_failed")}
    failed = {e["job_id"]: e for e in logs if e["event"] == "job_failed"}
    assert failed[str(retried.id)]["error_kind"] == "storage_unavailable"
    assert failed[str(released.id)]["error_kind"] == "lease_expired"
    assert all("max_attempts was lowered" in e["reason"] for e in failed.values())
    assert all(e["recorded"] for e in failed.values())
    storage = {"kind": "k", "error_kind": "storage_unavailable"}
    assert worker.metrics.value("exportd_jobs_retried_total", storage) == 0
    assert worker.metrics.value("exportd_jobs_failed_total", storage) == 1
    lease = {"kind": "k", "error_kind": "lease_expired"}
    assert worker.metrics.value("exportd_jobs_failed_total", lease) == 1


async def test_unexpected_exception_is_an_internal_retryable_error() -> None:
    job = make_job()
    store = FakeStore(ready=[job])
    worker = Worker(store, FakeRunner(error=ZeroDivisionError("oops")), config())
    task = asyncio.create_task(worker.run(5))
    await until(lambda: store.calls)
    worker.request_stop()
    await task
    assert store.calls == [("retry:internal", job.id)]


@pytest.mark.parametrize(("state", "expected"), [("cancelled", "cancelled"), ("pending", "lost")])
async def test_a_job_lost_at_heartbeat_is_stopped_and_aborted(state: str, expected: str) -> None:
    job = make_job()
    store = FakeStore(ready=[job])
    runner = FakeRunner(seconds=30)
    worker = Worker(store, runner, config(lease_seconds=0.15))
    task = asyncio.create_task(worker.run(5))
    await until(lambda: runner.started)
    store.lose(job.id, state)
    await until(lambda: runner.cancelled, timeout=1.0)
    worker.request_stop()
    await task
    assert runner.aborted == [job.id]
    assert runner.committed == []
    # Nothing is written for a job the worker no longer owns.
    assert store.calls == []
    counted = {
        "cancelled": worker.metrics.value("exportd_jobs_cancelled_total", {"kind": "k"}),
        "lost": worker.metrics.value("exportd_lease_renewals_lost_total"),
    }
    assert counted == {k: (1 if k == expected else 0) for k in counted}


async def test_a_briefly_locked_row_is_not_taken_for_a_lost_job() -> None:
    job = make_job()
    store = FakeStore(ready=[job])
    runner = FakeRunner(seconds=0.4)
    worker = Worker(store, runner, config(lease_seconds=0.6))
    store.locked.add(job.id)
    task = asyncio.create_task(worker.run(5))
    await until(lambda: store.heartbeats >= 1)
    store.locked.clear()
    await until(lambda: runner.committed)
    worker.request_stop()
    await task
    assert runner.cancelled == []
    assert store.calls == [("complete", job.id)]


async def test_a_row_locked_for_a_whole_lease_stops_the_job() -> None:
    job = make_job()
    store = FakeStore(ready=[job])
    store.locked.add(job.id)
    runner = FakeRunner(seconds=30)
    worker = Worker(store, runner, config(lease_seconds=0.3))
    task = asyncio.create_task(worker.run(5))
    await until(lambda: runner.cancelled, timeout=2.0)
    worker.request_stop()
    await task
    assert runner.aborted == [job.id]
    assert store.calls == []


async def test_a_lease_that_cannot_be_renewed_stops_the_job() -> None:
    job = make_job()
    store = FakeStore(ready=[job], heartbeat_error=ConnectionRefusedError("db down"))
    runner = FakeRunner(seconds=30)
    worker = Worker(store, runner, config(lease_seconds=0.3))
    task = asyncio.create_task(worker.run(5))
    await until(lambda: runner.started)
    started = asyncio.get_running_loop().time()
    await until(lambda: runner.cancelled, timeout=2.0)
    stopped_after = asyncio.get_running_loop().time() - started
    worker.request_stop()
    await task
    # Stopped within a lease (plus one heartbeat), never after it ran out twice.
    assert stopped_after < 0.3 + 0.1 + 0.1
    assert store.heartbeats >= 2
    assert runner.aborted == [job.id]
    assert worker.metrics.value("exportd_lease_renewals_lost_total") == 1
    failed_beats = worker.metrics.value("exportd_database_errors_total", {"operation": "heartbeat"})
    assert failed_beats == store.heartbeats


async def test_cancel_notification_stops_the_job_without_waiting_for_a_heartbeat() -> None:
    job = make_job()
    store = FakeStore(ready=[job])
    runner = FakeRunner(seconds=30)
    worker = Worker(store, runner, config(lease_seconds=60))
    task = asyncio.create_task(worker.run(5))
    await until(lambda: runner.started)
    store.lose(job.id, "cancelled")
    worker.on_job_event(job.id, "cancelled")
    await until(lambda: runner.cancelled, timeout=0.5)
    worker.request_stop()
    await task
    assert store.heartbeats == 0


async def test_shutdown_lets_short_jobs_finish_and_hands_long_ones_back() -> None:
    short, long = make_job(), make_job()
    store = FakeStore(ready=[short, long])
    runner = FakeRunner()
    worker = Worker(store, runner, config(lease_seconds=60))

    durations = {short.id: 0.1, long.id: 30.0}

    async def run(ctx: JobContext) -> Prepared:
        runner.seconds = durations[ctx.job.id]
        return await FakeRunner.run(runner, ctx)

    runner.run = run  # type: ignore[method-assign]
    task = asyncio.create_task(worker.run(grace_seconds=0.5))
    await until(lambda: len(runner.started) == 2)
    worker.request_stop()
    store.ready.append(make_job())  # must not be claimed any more
    await asyncio.wait_for(task, 5)
    assert ("complete", short.id) in store.calls
    assert ("release", long.id) in store.calls
    assert runner.aborted == [long.id]
    assert len(runner.started) == 2


async def test_second_stop_skips_the_grace_period() -> None:
    job = make_job()
    store = FakeStore(ready=[job])
    runner = FakeRunner(seconds=30)
    worker = Worker(store, runner, config(lease_seconds=60))
    task = asyncio.create_task(worker.run(grace_seconds=60))
    await until(lambda: runner.started)
    worker.request_stop()
    await asyncio.sleep(0.05)
    assert not task.done()
    worker.hurry()
    await asyncio.wait_for(task, 2)
    assert store.calls == [("release", job.id)]


async def test_a_job_lost_before_completion_is_not_committed() -> None:
    job = make_job()
    store = FakeStore(ready=[job])
    runner = FakeRunner(seconds=0.05)
    worker = Worker(store, runner, config(lease_seconds=60))
    task = asyncio.create_task(worker.run(5))
    await until(lambda: runner.started)
    store.lose(job.id, "pending")  # reaped while the export ran
    await until(lambda: store.calls)
    worker.request_stop()
    await task
    assert store.calls == [("complete_lost", job.id)]
    assert runner.committed == []
    assert runner.aborted == [job.id]


async def test_claim_failures_are_survived() -> None:
    job = make_job()

    class FlakyStore(FakeStore):
        failures = 2

        async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Job]:
            if self.failures:
                self.failures -= 1
                raise ConnectionResetError("db restarting")
            return await super().claim(worker_id, limit, lease_seconds)

    store = FlakyStore(ready=[job])
    runner = FakeRunner()
    worker = Worker(store, runner, config(poll_interval=0.01))
    task = asyncio.create_task(worker.run(5))
    await until(lambda: runner.committed)
    worker.request_stop()
    await task
    assert store.calls == [("complete", job.id)]
    assert worker.metrics.value("exportd_database_errors_total", {"operation": "claim"}) == 2


def test_worker_ids_are_fresh_per_start() -> None:
    from exportd.worker.loop import new_worker_id

    first, second = new_worker_id(), new_worker_id()
    assert first != second
    assert first.rsplit(":", 1)[0] == second.rsplit(":", 1)[0]


async def test_every_log_line_about_a_job_names_it() -> None:
    from structlog.testing import capture_logs

    ok, bad, lost = make_job(), make_job(), make_job()
    store = FakeStore(ready=[ok, bad, lost])
    runner = FakeRunner()

    async def run(ctx: JobContext) -> Prepared:
        runner.started.append(ctx.job.id)
        if ctx.job.id == bad.id:
            raise ExportError(ErrorKind.TIMEOUT, "slow")
        if ctx.job.id == lost.id:
            await hang_until_cancelled(runner, ctx)
        return Prepared(runner, ctx.job.id)

    runner.run = run  # type: ignore[method-assign]
    with capture_logs() as logs:
        worker = Worker(store, runner, config(lease_seconds=0.15))
        task = asyncio.create_task(worker.run(5))
        await until(lambda: len(runner.started) == 3)
        store.lose(lost.id, "pending")
        await until(lambda: runner.cancelled)
        worker.request_stop()
        await task
    about_jobs = [e for e in logs if "job_id" in e]
    assert {e["event"] for e in about_jobs} >= {
        "job_started",
        "job_completed",
        "job_retry",
        "job_lost",
    }
    for event in about_jobs:
        assert {"owner", "kind", "attempt", "worker_id"} <= event.keys(), event


async def test_a_job_claimed_again_stops_the_stale_claim() -> None:
    first = make_job(attempt=1)
    second = dataclasses.replace(first, attempt=2)
    store = FakeStore(ready=[first])
    runner = FakeRunner()

    async def run(ctx: JobContext) -> Prepared:
        runner.started.append(ctx.job.id)
        if ctx.job.attempt == 1:
            await hang_until_cancelled(runner, ctx)
        return Prepared(runner, ctx.job.id)

    runner.run = run  # type: ignore[method-assign]
    worker = Worker(store, runner, config(lease_seconds=60))
    task = asyncio.create_task(worker.run(5))
    await until(lambda: runner.started)
    store.ready.append(second)  # handed back behind the worker's back
    worker.wake()
    await until(lambda: runner.committed)
    worker.request_stop()
    await asyncio.wait_for(task, 5)
    assert runner.cancelled == [first.id]
    assert runner.committed == [first.id]
    assert worker.running_jobs == []


async def test_a_hanging_database_stops_the_job_before_its_lease_runs_out() -> None:
    job = make_job()

    class HangingStore(FakeStore):
        async def heartbeat(
            self, worker_id: str, lease_seconds: float, beats: Sequence[Heartbeat]
        ) -> set[uuid.UUID]:
            self.heartbeats += 1
            await asyncio.Event().wait()  # a half-open connection: no answer, no error
            return set()

    store = HangingStore(ready=[job])
    runner = FakeRunner(seconds=30)
    worker = Worker(store, runner, config(lease_seconds=0.6))
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(worker.run(5))
    await until(lambda: runner.started)
    started = loop.time()
    await until(lambda: runner.cancelled, timeout=2.0)
    assert loop.time() - started < 0.6, "stopped only after the lease could have run out"
    worker.request_stop()
    await task
    assert runner.aborted == [job.id]


async def test_a_job_whose_object_is_committed_leaves_its_slot_to_the_next_claim() -> None:
    store = FakeStore(ready=[make_job() for _ in range(6)], recorded=asyncio.Event())
    runner = FakeRunner()
    worker = Worker(store, runner, config(concurrency=2))
    task = asyncio.create_task(worker.run(5))
    # Two exports produced and committed, their rows still being recorded:
    # two more are claimed and run meanwhile, and no more than that (as many
    # jobs recording their rows as there are slots, at most).
    await until(lambda: len(runner.committed) == 4)
    await asyncio.sleep(0.1)
    assert len(runner.started) == 4
    assert store.calls == []
    assert store.recorded is not None
    store.recorded.set()
    await until(lambda: len(store.calls) == 6)
    worker.request_stop()
    await task
    assert runner.peak <= 2
    assert sorted(c for c, _ in store.calls) == ["complete"] * 6


async def test_a_job_whose_commit_is_slow_keeps_its_slot() -> None:
    committing = asyncio.Event()
    store = FakeStore(ready=[make_job() for _ in range(3)])

    @dataclass
    class SlowCommit(Prepared):
        async def commit(self) -> ExportResult:
            committing.set()
            await asyncio.sleep(0.2)
            return await super().commit()

    class SlowCommitRunner(FakeRunner):
        async def run(self, ctx: JobContext) -> Prepared:
            await super().run(ctx)
            return SlowCommit(self, ctx.job.id)

    runner = SlowCommitRunner()
    worker = Worker(store, runner, config(concurrency=1))
    task = asyncio.create_task(worker.run(5))
    await asyncio.wait_for(committing.wait(), 5)
    await asyncio.sleep(0.1)
    assert len(runner.started) == 1, "a job committing its object still holds its slot"
    await until(lambda: len(store.calls) == 3)
    worker.request_stop()
    await task
