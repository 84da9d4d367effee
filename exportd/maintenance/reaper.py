"""The reaper: hands back jobs whose worker stopped renewing its lease.

A lease runs out when its worker died, hung, or lost the database for a whole
lease period. The attempt it was claimed with stays spent; the job goes back
to ``pending`` after the usual backoff, or fails once its attempts are used
up. Several daemons may run the reaper at once: an advisory lock lets one of
them work each round, and row locks (SKIP LOCKED) keep it off jobs that are
completing right now. One row that refuses the update (an application
trigger that raises, say) never fails the round: the batch is retried row by
row, and the row that cannot be reaped is logged and passed over.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from exportd.errors import ErrorKind
from exportd.metrics import Metrics
from exportd.queue.backoff import BackoffPolicy, Fail, Retry, decide
from exportd.queue.postgres import PgJobStore
from exportd.queue.row_by_row import Passed
from exportd.queue.upkeep import Reap, ReapRound

# (key, upload id) -> True when aborted, False when S3 no longer had it open;
# bounded by its own deadline (``exportd.s3.objects.abort_upload``), since S3
# may be the thing that is down and reaping must go on.
AbortUpload = Callable[[str, str], Awaitable[bool]]


@dataclass(frozen=True)
class Reaped:
    job_id: uuid.UUID
    state: str  # 'pending' or 'failed'


def reap_decision(row: Any, policy: BackoffPolicy, rng: random.Random | None = None) -> Reap:
    """What becomes of one job whose lease ran out (pure)."""
    attempts, max_attempts = int(row["attempts"]), int(row["max_attempts"])
    what = (
        f"worker {row['worker_id']} stopped renewing its lease during attempt "
        f"{attempts} of {max_attempts} (it crashed, hung or lost the database)"
    )
    decision = decide(ErrorKind.LEASE_EXPIRED, attempts, max_attempts, policy, rng)
    if isinstance(decision, Fail):
        return Reap(row["id"], "failed", 0.0, f"{what}; {decision.reason}")
    assert isinstance(decision, Retry)
    return Reap(row["id"], "pending", decision.delay_seconds, f"{what}; will retry")


class Reaper:
    def __init__(
        self,
        queue: PgJobStore,
        policy: BackoffPolicy,
        *,
        abort_upload: AbortUpload | None = None,
        batch_size: int = 500,
        logger: Any = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._queue = queue
        self.metrics = metrics or Metrics()
        self._policy = policy
        self._abort_upload = abort_upload
        self._batch_size = batch_size
        self.log = logger or structlog.get_logger()
        # Rows that refused their update even alone: passed over from then on.
        self._unreapable = Passed()

    async def run_once(self) -> list[Reaped]:
        """One round: reap up to a batch of expired leases."""
        async with self._queue.upkeep_round(ReapRound) as round_:
            if round_ is None:
                return []
            rows = await round_.expired_leases(self._batch_size, self._unreapable.ids())
            if not rows:
                return []
            decisions = [reap_decision(r, self._policy) for r in rows]
            updated, refused = await round_.reap(decisions)
        for decision, exc in refused:
            self._unreapable.add(decision.job_id)
            self.metrics.error("database", "reap")
            self.log.error(
                "job_unreapable",
                job_id=str(decision.job_id),
                error=f"{exc.__class__.__name__}: {exc}"[:500],
                passed_over=True,
            )
        by_id = {r["id"]: r for r in rows}
        reaped = [Reaped(r["id"], r["state"]) for r in updated]
        for item in reaped:
            row = by_id[item.job_id]
            log = self.log.bind(
                job_id=str(item.job_id),
                owner=row["owner"],
                kind=row["kind"],
                attempt=row["attempts"],
                worker_id=row["worker_id"],
            )
            self.metrics.jobs_reaped.labels(row["kind"], item.state).inc()
            log.warning("job_reaped", new_state=item.state)
            if row["upload_id"] is not None:
                await self._abort_orphan(row["upload_key"], row["upload_id"], log)
        return reaped

    async def _abort_orphan(self, key: str, upload_id: str, log: Any) -> None:
        """The dead worker's upload can never complete: abort it now rather than
        leave its parts to the bucket's lifecycle rule."""
        if self._abort_upload is None:
            return
        try:
            aborted = await self._abort_upload(key, upload_id)
        except Exception as exc:
            self.metrics.error("s3", "abort")
            log.warning("orphan_upload_abort_failed", key=key, upload_id=upload_id, error=repr(exc))
        else:
            # Gone: the dead worker had completed it in S3 just before dying
            # (the row's update never committed), or someone aborted it.
            event = "orphan_upload_aborted" if aborted else "orphan_upload_gone"
            log.info(event, key=key, upload_id=upload_id)

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                while len(await self.run_once()) >= self._batch_size:
                    pass  # a backlog: keep going without waiting
            except Exception as exc:
                self.metrics.error("database", "reap")
                self.log.warning("reaper_failed", error=repr(exc))
            await asyncio.sleep(interval)
