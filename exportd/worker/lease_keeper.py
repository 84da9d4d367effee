"""Keeping the leases of a worker's running jobs, and finding those it lost.

One renewal for every running job, carrying its progress, on the schedule of
``exportd.queue.lease``. A job the renewal leaves out is asked after: gone
(cancelled, reaped, its owner changed by the application) it is to be
stopped; only locked for a moment, it is renewed at the next beat. Whatever
the reason a lease goes unrenewed, once half a lease has passed the job is to
be stopped before the reaper may hand it to another worker.
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
            Heartbeat(r.job.id, r.job.attempt, r.job.owner, *r.progress.snapshot()) for r in live
        ]
        sent = time.monotonic()
        timeout = renewal_timeout(self.lease_seconds)
        stopped: set[int] = set()

        async def check(running: RunningJob) -> None:
            why = await self._check_ownership(running)
            if why is not None:
                stopped.add(id(running))
                stop(running, why)

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
            renewed = (
                running.stop_reason is not None or id(running) in stopped or running.job.id in owned
            )
            if not renewed and lease_lost_locally(running.renewal_sent, now, self.lease_seconds):
                running.log.warning("lease_expired_locally")
                self.metrics.lease_renewals_lost.inc()
                stop(running, StopReason.LOST)

    async def _check_ownership(self, running: RunningJob) -> StopReason | None:
        """A job the heartbeat did not renew: gone (why), or only locked for a moment (None)?"""
        try:
            found = await asyncio.wait_for(
                self.store.state_of(running.job.id), renewal_timeout(self.lease_seconds)
            )
        except Exception as exc:
            # Unknown: keep working; the local lease check stops the job in time.
            running.log.warning("job_state_unknown", error=repr(exc))
            return None
        if found is not None and found.held_by(
            self.worker_id, running.job.attempt, running.job.owner
        ):
            return None  # still ours, its row was locked: renewed at the next beat
        cancelled = found is not None and found.state == "cancelled"
        if not cancelled:
            self.metrics.lease_renewals_lost.inc()
        return StopReason.CANCELLED if cancelled else StopReason.LOST
