"""``JobStore`` on the ``exportd.jobs`` table, with the named queries of sql/queries.sql.

``PgJobStore`` is the queue's one front door: the worker, the API, the CLI
and maintenance all run the queue's statements through it. The claim
(``exportd.queue.claim``) and the completion (``exportd.queue.completion``)
have modules of their own; the guarded single-row writes and the heartbeat
are here, and the methods for the API, the CLI and maintenance delegate to
the modules they name.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from exportd.errors import ErrorKind
from exportd.metrics import QueueSnapshot
from exportd.queue import pauses, reads, requeue, upkeep, workers
from exportd.queue.claim import Claims
from exportd.queue.completion import Completions
from exportd.queue.enqueue import Enqueued, NewJob, enqueue, quota_decision
from exportd.queue.interface import Commit, Completing
from exportd.queue.job import ExportResult, Heartbeat, Job, JobState, LetGo, UploadRef
from exportd.queue.locked_job import LockedJob, locked_job
from exportd.queue.outbox import ATTEMPTS_SHOWN, deliveries_of
from exportd.queue.overview import FINISHED_WINDOW_SECONDS, Overview, read_overview
from exportd.queue.pauses import Pause
from exportd.queue.requeue import Attempt
from exportd.queue.row_by_row import per_row_on_failure, row_error
from exportd.queue.schedules import ScheduleRound, ScheduleStore, schedule_round
from exportd.queue.sql import queries
from exportd.queue.workers import JobProgress, WorkerIdentity, WorkerStatus
from exportd.queue.zones import ZoneNames
from exportd.quotas import Quota


class PgJobStore:
    """``JobStore`` on the ``exportd.jobs`` table; every write after the claim is guarded."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_per_owner: int | None = None,
        heartbeat_pool: asyncpg.Pool | None = None,
        api_pool: asyncpg.Pool | None = None,
        logger: Any = None,
    ) -> None:
        self._pool = pool
        # The API's requests (and the CLI's) on connections of their own: a
        # burst of requests never keeps a claim or a completion waiting.
        self._api_pool = api_pool or pool
        self.log = logger or structlog.get_logger()
        # Heartbeats on connections of their own: completions, the reaper and
        # maintenance hold pool connections across S3 requests, and a slow
        # bucket must not leave a lease unrenewed while a heartbeat waits for
        # a connection (the job would be reaped while it is still running).
        self._heartbeat_pool = heartbeat_pool or pool
        self._q = queries()
        self._claims = Claims(pool, self._q, max_per_owner, self.log)
        self._completions = Completions(pool, self._q, self.log)
        # The time zones a job's options may name (POST /v1/jobs, schedules).
        self.zones = ZoneNames(self._api_pool)

    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Job]:
        """See ``exportd.queue.claim.Claims.claim``."""
        return await self._claims.claim(worker_id, limit, lease_seconds)

    async def heartbeat(
        self, worker_id: str, lease_seconds: float, beats: Sequence[Heartbeat]
    ) -> set[uuid.UUID]:
        """Renew the leases of ``beats``; returns the ids renewed.

        One statement for all of them; should a row make it fail, each is
        renewed alone, and a job whose renewal is refused is left out of the
        answer (its worker then asks after it, and stops it once its lease is
        lost locally).
        """
        if not beats:
            return set()
        lease = float(lease_seconds)

        async def run(part: Sequence[Heartbeat]) -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await conn.fetch(
                self._q["heartbeat"],
                worker_id,
                lease,
                [b.job_id for b in part],
                [b.claim for b in part],
                [b.rows for b in part],
                [b.bytes for b in part],
                [b.percent for b in part],
                [b.owner for b in part],
            )
            return rows

        async with self._heartbeat_pool.acquire() as conn:
            rows, failed = await per_row_on_failure(conn, beats, run)
        for beat, exc in failed:
            self.log.error(
                "heartbeat_refused",
                job_id=str(beat.job_id),
                error=row_error("the lease could not be renewed", exc),
            )
        return {r["id"] for r in rows}

    async def record_upload(self, job: Job, worker_id: str, ref: UploadRef) -> bool:
        row = await self._pool.fetchrow(
            self._q["record_upload"],
            job.id,
            worker_id,
            job.claim,
            ref.upload_id,
            ref.key,
            job.owner,
        )
        return row is not None

    def begin_completion(
        self,
        job: Job,
        worker_id: str,
        retention_seconds: float,
        lease_seconds: float,
        commit: Commit,
    ) -> Completing:
        """See ``JobStore.begin_completion`` and ``exportd.queue.completion``."""
        return self._completions.submit(job, worker_id, retention_seconds, lease_seconds, commit)

    async def complete(
        self,
        job: Job,
        worker_id: str,
        retention_seconds: float,
        lease_seconds: float,
        commit: Commit,
    ) -> ExportResult | None:
        """``begin_completion``, awaited to its outcome: the ``ExportResult``
        recorded, or None when the job was lost; raises the commit's or the
        transaction's error."""
        completing = self.begin_completion(job, worker_id, retention_seconds, lease_seconds, commit)
        return await completing.outcome

    async def retry(
        self, job: Job, worker_id: str, delay_seconds: float, error: str, kind: ErrorKind
    ) -> LetGo | None:
        row = await self._pool.fetchrow(
            self._q["retry"],
            job.id,
            worker_id,
            job.claim,
            float(delay_seconds),
            error,
            str(kind),
            job.owner,
        )
        return None if row is None else LetGo(row["state"])

    async def fail(self, job: Job, worker_id: str, error: str, kind: ErrorKind) -> bool:
        row = await self._pool.fetchrow(
            self._q["fail"], job.id, worker_id, job.claim, error, str(kind), job.owner
        )
        return row is not None

    async def release(self, job: Job, worker_id: str) -> LetGo | None:
        row = await self._pool.fetchrow(self._q["release"], job.id, worker_id, job.claim, job.owner)
        return None if row is None else LetGo(row["state"])

    async def state_of(self, job_id: uuid.UUID) -> JobState | None:
        row = await self._pool.fetchrow(self._q["job_state"], job_id)
        if row is None:
            return None
        return JobState(str(row["state"]), row["worker_id"], int(row["claims"]), str(row["owner"]))

    async def quota_retry_at(self, job: Job, quota: Quota) -> datetime | None:
        """See ``JobStore.quota_retry_at`` (``enqueue.quota_decision``)."""
        refused = await quota_decision(
            self._pool, job.owner, job.kind, quota, (job.created_at, job.id)
        )
        return None if refused is None else refused[0]

    # --- For the API, the CLI and maintenance (the statements are in the modules named) ---

    async def enqueue(self, job: NewJob, quota: Quota | None = None) -> Enqueued:
        """``exportd.queue.enqueue.enqueue`` on the API's connections; ``quota``
        is the job's kind's, when it has one (QuotaExceeded over it)."""
        return await enqueue(self._api_pool, job, quota)

    async def job(self, job_id: uuid.UUID) -> asyncpg.Record | None:
        """The job's whole row, or None (``reads.job``)."""
        return await reads.job(self._api_pool, job_id)

    async def list_jobs(
        self,
        owner: str | None,
        *,
        states: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        after: tuple[datetime, uuid.UUID] | None = None,
        limit: int,
        error_kinds: Sequence[str] | None = None,
    ) -> list[asyncpg.Record]:
        """A page of ``owner``'s jobs (every owner's: None), newest first
        (``reads.list_jobs``)."""
        return await reads.list_jobs(
            self._api_pool,
            owner,
            states=states,
            kinds=kinds,
            created_after=created_after,
            created_before=created_before,
            after=after,
            limit=limit,
            error_kinds=error_kinds,
        )

    def locked_job(self, job_id: uuid.UUID) -> AbstractAsyncContextManager[LockedJob]:
        """The job's row locked, to cancel or expire it (``locked_job.locked_job``)."""
        return locked_job(self._api_pool, job_id)

    async def snapshot(self) -> QueueSnapshot:
        """Jobs per state and the oldest ready pending job's wait (``reads.snapshot``)."""
        return await reads.snapshot(self._api_pool)

    async def ping(self) -> None:
        """One round trip to the queue database, for readiness."""
        await reads.ping(self._api_pool)

    def upkeep_round(
        self, kind: type[upkeep.RoundT]
    ) -> AbstractAsyncContextManager[upkeep.RoundT | None]:
        """A maintenance round of ``kind``, or None when another daemon has it
        (``upkeep.upkeep_round``)."""
        return upkeep.upkeep_round(self._pool, kind)

    # --- Schedules (the statements are in exportd.queue.schedules) ---

    @property
    def schedules(self) -> ScheduleStore:
        """The schedules the API and the CLI read and write, on the API's connections."""
        return ScheduleStore(self._api_pool)

    def schedule_round(self) -> AbstractAsyncContextManager[ScheduleRound]:
        """A round of the scheduler, in one transaction (``queue.schedules.schedule_round``)."""
        return schedule_round(self._pool)

    # --- Retry on request and the attempts' history (``exportd.queue.requeue``) ---

    async def requeue(
        self, job_id: uuid.UUID, owner_scope: str | None = None
    ) -> asyncpg.Record | None:
        """A failed or cancelled job pending again, its attempts reset: its row
        after, or None when unknown (or outside ``owner_scope``); raises
        ``requeue.RetryRefused`` (see ``requeue.requeue``)."""
        return await requeue.requeue(self._api_pool, job_id, owner_scope)

    async def attempts(self, job_id: uuid.UUID) -> list[Attempt]:
        """The job's last ended attempts, oldest first (``requeue.attempts``)."""
        return await requeue.attempts(self._api_pool, job_id)

    async def deliveries(self, job_id: uuid.UUID) -> list[dict[str, Any]]:
        """The job's last webhook deliveries, oldest first, each with its last attempts
        (``outbox.deliveries_of``), on the API's connections."""
        return await deliveries_of(self._api_pool, job_id, ATTEMPTS_SHOWN)

    # --- Paused kinds (exportd.queue.pauses), for the API and the CLI ---

    async def pause_kind(
        self, kind: str, *, paused_by: str, reason: str | None = None
    ) -> tuple[Pause, bool]:
        """Pause ``kind`` (``pauses.ALL_KINDS``: every kind); the pause, and whether it
        is new (``pauses.pause``). Logged as ``kind_paused`` with who did it."""
        found, created = await pauses.pause(self._api_pool, kind, paused_by, reason)
        self.log.info(
            "kind_paused",
            kind=kind,
            paused_by=paused_by,
            reason=reason,
            already_paused=not created,
            paused_at=found.paused_at.isoformat(),
        )
        return found, created

    async def resume_kind(self, kind: str, *, resumed_by: str) -> Pause | None:
        """Lift ``kind``'s own pause; the pause lifted, or None (``pauses.resume``).
        Logged as ``kind_resumed`` with who did it."""
        lifted = await pauses.resume(self._api_pool, kind)
        self.log.info("kind_resumed", kind=kind, resumed_by=resumed_by, was_paused=bool(lifted))
        return lifted

    async def resume_all_kinds(self, *, resumed_by: str) -> list[Pause]:
        """Lift every pause; those lifted (``pauses.resume_all``). Logged as
        ``kind_resumed`` with kind '*' and the kinds lifted."""
        lifted = await pauses.resume_all(self._api_pool)
        self.log.info(
            "kind_resumed",
            kind=pauses.ALL_KINDS,
            resumed_by=resumed_by,
            lifted=[p.kind for p in lifted],
        )
        return lifted

    async def paused_kinds(self) -> list[Pause]:
        """Every pause (``pauses.pauses``)."""
        return await pauses.pauses(self._api_pool)

    # --- The daemons alive and the operator's overview (queue.workers, queue.overview) ---

    async def announce_worker(self, identity: WorkerIdentity) -> None:
        """Register the daemon, or refresh its heartbeat (``workers.announce``), on the
        heartbeats' connections: a busy pool never makes a live daemon look dead."""
        await workers.announce(self._heartbeat_pool, identity)

    async def retire_worker(self, worker_id: str) -> bool:
        """Delete the daemon's row at a clean stop; whether there was one."""
        return await workers.retire(self._pool, worker_id)

    async def prune_workers(self) -> int:
        """Delete the rows of daemons no longer alive (``workers.prune``); how many."""
        return await workers.prune(self._pool)

    async def workers(self) -> list[WorkerStatus]:
        """The daemons alive now, each with the jobs it runs (``workers.alive``)."""
        return await workers.alive(self._api_pool)

    async def running_jobs(self) -> list[JobProgress]:
        """Every processing job with its progress, in one statement (``workers.running_jobs``)."""
        return await workers.running_jobs(self._api_pool)

    async def overview(self, finished_window_seconds: float = FINISHED_WINDOW_SECONDS) -> Overview:
        """The queue's figures for the dashboard, in one snapshot (``overview.read_overview``)."""
        return await read_overview(self._api_pool, finished_window_seconds)
