"""Keeping the leases of a worker's running jobs, and finding those it lost.

One renewal for every running job, carrying its progress, on the schedule of
``exportd.queue.lease``. A job the renewal leaves out is asked after: gone
(cancelled, reaped, its owner changed by the application) it is to be
stopped; only locked for a moment, it is renewed at the next beat. Whatever
the reason a lease goes unrenewed, once half a lease has passed the job is to
be stopped before the reaper may hand it to another worker.

A job may start finishing while its renewal is under way: its own completing
transaction then locks its row (the renewal passes over it), and may commit
before the job is asked after, which then reads ``completed``. Such a job is
neither lost nor to be stopped: a job whose running record says it is
finishing (``RunningJob.finishing``), or that is already being stopped, is
left alone, and a loss is counted and logged only where a stop is issued.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from exportd.metrics import Metrics
from exportd.queue.interface import JobStore
from exportd.queue.job import Heartbeat
from exportd.queue.lease import lease_lost_locally, renewal_timeout
from exportd.worker.running import RunningJob, StopReason

# How the worker stops one of its jobs, and why (its task is cancelled).
Stop = Callable[[RunningJob, StopReason], None]


class LeaseKeeper:
    """Renews the leases of one worker's jobs, and stops those it lost."""

    def __init__(
        self, store: JobStore, worker_id: str, lease_seconds: float, metrics: Metrics, log: Any
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.metrics = metrics
        self.log = log

    async def renew(self, live: Sequence[RunningJob], stop: Stop) -> None:
        """Renew the leases of ``live``; ``stop(job, why)`` each job found lost,
        as soon as it is found (a cancelled job stops without waiting for the
        other checks).

        Sets ``renewal_sent`` on each job renewed. A renewal that fails or takes
        longer than ``renewal_timeout`` is logged and counted, never raised.
        """
        if not live:
            return
        beats = [
            Heartbeat(r.job.id, r.job.claim, r.job.owner, *r.progress.snapshot()) for r in live
        ]
        sent = time.monotonic()
        timeout = renewal_timeout(self.lease_seconds)
        stopped: set[int] = set()

        def stop_once(running: RunningJob, why: StopReason) -> None:
            # Decided after the awaits: the job may have started finishing, or
            # been stopped by someone else, meanwhile.
            if running.finishing or running.stop_reason is not None or id(running) in stopped:
                return
            stopped.add(id(running))
            if why is StopReason.LOST:
                self.metrics.lease_renewals_lost.inc()
            stop(running, why)

        async def check(running: RunningJob) -> None:
            why = await self._check_ownership(running)
            if why is not None:
                stop_once(running, why)

        try:
            owned = await asyncio.wait_for(
                self.store.heartbeat(self.worker_id, self.lease_seconds, beats), timeout
            )
        except Exception as exc:
            self.metrics.error("database", "heartbeat")
            self.log.warning("heartbeat_failed", error=repr(exc), jobs=len(live))
            owned = set()
        else:
            for running in live:
                if running.job.id in owned:
                    running.renewal_sent = sent
            await asyncio.gather(*(check(r) for r in live if r.job.id not in owned))
        # Whatever the reason a lease went unrenewed, once a whole lease has
        # passed the reaper may hand the job to another worker: stop first.
        now = time.monotonic()
        for running in live:
            if running.job.id in owned or running.finishing or running.stop_reason is not None:
                continue
            if id(running) not in stopped and lease_lost_locally(
                running.renewal_sent, now, self.lease_seconds
            ):
                running.log.warning("lease_expired_locally")
                stop_once(running, StopReason.LOST)

    async def _check_ownership(self, running: RunningJob) -> StopReason | None:
        """A job the heartbeat did not renew: gone (why), or only locked for a moment,
        or finishing (None)? Decides only; the caller counts and stops."""
        if running.finishing:
            return None  # its own completion locked the row: not to be asked after
        try:
            found = await asyncio.wait_for(
                self.store.state_of(running.job.id), renewal_timeout(self.lease_seconds)
            )
        except Exception as exc:
            # Unknown: keep working; the local lease check stops the job in time.
            running.log.warning("job_state_unknown", error=repr(exc))
            return None
        if found is not None and found.held_by(
            self.worker_id, running.job.claim, running.job.owner
        ):
            return None  # still ours, its row was locked: renewed at the next beat
        cancelled = found is not None and found.state == "cancelled"
        return StopReason.CANCELLED if cancelled else StopReason.LOST
