"""The lease keeper alone, with the queue faked at the ``JobStore`` Protocol: which
jobs it stops, when, and what it counts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from exportd.metrics import Metrics
from exportd.queue.job import Heartbeat, JobState, Progress
from exportd.worker.lease_keeper import LeaseKeeper
from exportd.worker.running import RunningJob, StopReason
from tests.support.fake_store import FakeStore, make_job

LEASE = 30.0
LOST = "exportd_lease_renewals_lost_total"


def running_job(renewal_sent: float | None = None) -> RunningJob:
    sent = time.monotonic() if renewal_sent is None else renewal_sent
    return RunningJob(make_job(), Progress(), sent, structlog.get_logger())


@dataclass
class Stops:
    """The worker's ``_stop``, as the keeper sees it: records, and marks the job."""

    seen: list[tuple[uuid.UUID, StopReason]] = field(default_factory=list)

    def __call__(self, running: RunningJob, why: StopReason) -> None:
        self.seen.append((running.job.id, why))
        running.stop_reason = why


@dataclass
class CompletingDuringRenewal(FakeStore):
    """The job's own completion takes its row while the heartbeat runs, and commits
    before the keeper asks after it: the heartbeat passes over the locked row,
    and the job is ``completed`` once asked after."""

    finishing: list[RunningJob] = field(default_factory=list)

    async def heartbeat(
        self, worker_id: str, lease_seconds: float, beats: Sequence[Heartbeat]
    ) -> set[uuid.UUID]:
        for running in self.finishing:
            running.finishing = True  # the worker handed it over to be completed
            self.lose(running.job.id, "completed")  # ... and its completion committed
        return await super().heartbeat(worker_id, lease_seconds, beats)


def keeper(store: FakeStore) -> tuple[LeaseKeeper, Metrics]:
    metrics = Metrics()
    return LeaseKeeper(store, "w1", LEASE, metrics, structlog.get_logger()), metrics


def claimed(store: FakeStore, *jobs: RunningJob) -> None:
    for running in jobs:
        store.owned.add(running.job.id)
        store.states[running.job.id] = "processing"
        store.workers[running.job.id] = "w1"


async def test_a_job_that_finishes_while_its_lease_is_renewed_is_not_stopped() -> None:
    running = running_job()
    store = CompletingDuringRenewal(finishing=[running])
    claimed(store, running)
    leases, metrics = keeper(store)
    stops = Stops()

    await leases.renew([running], stops)

    assert stops.seen == []
    assert running.stop_reason is None
    assert metrics.value(LOST) == 0


async def test_a_finishing_job_is_not_stopped_even_when_its_lease_is_lost_locally() -> None:
    running = running_job(renewal_sent=time.monotonic() - LEASE)
    store = CompletingDuringRenewal(finishing=[running])
    claimed(store, running)
    leases, metrics = keeper(store)
    stops = Stops()

    await leases.renew([running], stops)

    assert stops.seen == []
    assert metrics.value(LOST) == 0


async def test_the_finishing_job_is_left_alone_and_a_lost_one_beside_it_is_stopped() -> None:
    finishing, lost = running_job(), running_job()
    store = CompletingDuringRenewal(finishing=[finishing])
    claimed(store, finishing, lost)
    store.lose(lost.job.id, "pending")  # reaped behind the worker's back
    leases, metrics = keeper(store)
    stops = Stops()

    await leases.renew([finishing, lost], stops)

    assert stops.seen == [(lost.job.id, StopReason.LOST)]
    assert metrics.value(LOST) == 1


async def test_a_loss_is_counted_only_where_a_stop_is_issued() -> None:
    """A job already being stopped (cancelled by a notification while the keeper
    asked after it) is neither stopped again nor counted as lost."""
    running = running_job(renewal_sent=time.monotonic() - LEASE)
    store = FakeStore()
    claimed(store, running)
    store.lose(running.job.id, "pending")
    asked = asyncio.Event()
    state_of = store.state_of

    async def slow_state_of(job_id: uuid.UUID) -> JobState | None:
        running.stop_reason = StopReason.CANCELLED  # the notification came first
        asked.set()
        return await state_of(job_id)

    store.state_of = slow_state_of  # type: ignore[method-assign]
    leases, metrics = keeper(store)
    stops = Stops()

    await leases.renew([running], stops)

    assert asked.is_set()
    assert stops.seen == []
    assert metrics.value(LOST) == 0


async def test_each_lost_job_is_stopped_and_counted_once() -> None:
    running = running_job(renewal_sent=time.monotonic() - LEASE)
    store = FakeStore()
    claimed(store, running)
    store.lose(running.job.id, "pending")
    leases, metrics = keeper(store)
    stops = Stops()

    await leases.renew([running], stops)

    # Found lost by its check, and its lease lost locally as well: one stop, one count.
    assert stops.seen == [(running.job.id, StopReason.LOST)]
    assert metrics.value(LOST) == 1


async def test_a_cancelled_job_stops_before_the_other_checks_finish() -> None:
    cancelled, slow = running_job(), running_job()
    store = FakeStore()
    claimed(store, cancelled, slow)
    store.lose(cancelled.job.id, "cancelled")
    store.locked.add(slow.job.id)  # passed over by the heartbeat: asked after
    answer = asyncio.Event()
    state_of = store.state_of

    async def gated_state_of(job_id: uuid.UUID) -> JobState | None:
        if job_id == slow.job.id:
            await answer.wait()
        return await state_of(job_id)

    store.state_of = gated_state_of  # type: ignore[method-assign]
    leases, metrics = keeper(store)
    stops = Stops()

    renewal = asyncio.create_task(leases.renew([cancelled, slow], stops))
    async with asyncio.timeout(5):
        while not stops.seen:
            await asyncio.sleep(0.01)

    assert stops.seen == [(cancelled.job.id, StopReason.CANCELLED)]
    assert not renewal.done(), "the slow job's check is still waiting"
    answer.set()
    await renewal
    # The slow one was only locked for a moment: still this worker's, kept.
    assert stops.seen == [(cancelled.job.id, StopReason.CANCELLED)]
    assert metrics.value(LOST) == 0
