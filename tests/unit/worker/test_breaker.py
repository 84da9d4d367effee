"""The storage circuit breaker: pure decisions, and the worker honouring it."""

from __future__ import annotations

import asyncio

import pytest

from exportd.errors import ErrorKind, ExportError
from exportd.export.interface import JobContext, PreparedExport
from exportd.metrics import Metrics
from exportd.worker.breaker import BreakerState, StorageBreaker
from exportd.worker.loop import Worker, WorkerConfig
from tests.support.fake_store import FakeStore, make_job
from tests.support.helpers import eventually


def test_opens_after_consecutive_storage_failures_only() -> None:
    breaker = StorageBreaker(3)
    assert not breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "503 SlowDown")
    assert not breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "503 SlowDown")
    # Not about storage: neither counts nor resets.
    assert not breaker.record(ErrorKind.QUERY_ERROR, "syntax error")
    assert breaker.allows_claims
    assert breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "connection refused")
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allows_claims
    assert breaker.opened.is_set()
    assert "connection refused" in breaker.readiness()
    # Already open: a further failure does not "open" it again.
    assert not breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "still down")
    assert breaker.times_opened == 1


def test_a_success_resets_the_count_and_closes() -> None:
    breaker = StorageBreaker(2)
    breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "x")
    breaker.record(None)
    assert not breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "x")
    assert breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "x")
    assert breaker.record_success()
    assert breaker.allows_claims
    assert not breaker.opened.is_set()
    assert breaker.readiness() == "ok"
    assert not breaker.record_success(), "closing a closed breaker reports nothing"


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threshold"):
        StorageBreaker(0)


async def test_an_open_breaker_stops_the_worker_claiming() -> None:
    store = FakeStore(ready=[make_job() for _ in range(3)])
    breaker = StorageBreaker(1)
    breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "down")

    started: list[JobContext] = []

    class Blocked:
        async def run(self, ctx: JobContext) -> PreparedExport:
            started.append(ctx)
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    worker = Worker(
        store, Blocked(), WorkerConfig(concurrency=2, poll_interval=0.01), breaker=breaker
    )
    run = asyncio.create_task(worker.run(grace_seconds=0))
    # Many poll rounds pass with the breaker open: none claims.
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert len(store.ready) == 3
    assert started == []
    # Closed (by the probe, or a completion elsewhere): claims resume.
    breaker.record_success()
    worker.wake()
    await eventually(lambda: _true(len(started) == 2))
    worker.request_stop()
    await run


async def _true(value: bool) -> bool:
    return value


async def test_storage_failures_of_jobs_open_the_breaker_and_count_it() -> None:
    store = FakeStore(ready=[make_job() for _ in range(3)])
    breaker = StorageBreaker(2)
    metrics = Metrics()

    class S3Down:
        async def run(self, ctx: JobContext) -> PreparedExport:
            raise ExportError(ErrorKind.STORAGE_UNAVAILABLE, "S3 unreachable for UploadPart")

    worker = Worker(
        store,
        S3Down(),
        WorkerConfig(concurrency=1, poll_interval=0.01),
        breaker=breaker,
        metrics=metrics,
    )
    run = asyncio.create_task(worker.run(grace_seconds=0))
    await eventually(lambda: _true(not breaker.allows_claims))
    for _ in range(20):
        await asyncio.sleep(0.01)
    worker.request_stop()
    await run
    # Two failures opened it; the third job was never claimed.
    assert len(store.ready) == 1
    assert metrics.value("exportd_storage_breaker_opened_total") == 1
    assert "UploadPart" in breaker.readiness()


def test_status_reads_the_breaker_as_the_dashboard_shows_it() -> None:
    now = [100.0]
    breaker = StorageBreaker(2, clock=lambda: now[0])
    breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "503 SlowDown")
    closed = breaker.status()
    assert (closed.state, closed.failures, closed.threshold) == (BreakerState.CLOSED, 1, 2)
    assert (closed.open_seconds, closed.times_opened) == (None, 0)

    breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "connection refused")
    now[0] = 112.5
    opened = breaker.status()
    assert (opened.state, opened.failures, opened.reason) == (
        BreakerState.OPEN,
        2,
        "connection refused",
    )
    assert (opened.open_seconds, opened.times_opened) == (12.5, 1)

    breaker.record_success()
    assert breaker.status().state is BreakerState.CLOSED
    assert breaker.status().reason is None
    assert breaker.status().times_opened == 1
