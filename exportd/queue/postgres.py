"""``JobStore`` on the ``exportd.jobs`` table, with the named queries of sql/queries.sql.

The completion has a module of its own (``exportd.queue.completion``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import structlog

from exportd.errors import ErrorKind
from exportd.queue.completion import Completions
from exportd.queue.interface import Commit, Completing
from exportd.queue.isolation import Passed, per_row_on_failure, row_error
from exportd.queue.job import ExportResult, Heartbeat, Job, JobState, LetGo, UploadRef
from exportd.queue.sql import queries


class PgJobStore:
    """``JobStore`` on the ``exportd.jobs`` table; every write after the claim is guarded."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_per_owner: int | None = None,
        heartbeat_pool: asyncpg.Pool | None = None,
        logger: Any = None,
    ) -> None:
        self._pool = pool
        self.log = logger or structlog.get_logger()
        # Heartbeats on connections of their own: completions, the reaper and
        # maintenance hold pool connections across S3 requests, and a slow
        # bucket must not leave a lease unrenewed while a heartbeat waits for
        # a connection (the job would be reaped while it is still running).
        self._heartbeat_pool = heartbeat_pool or pool
        self._q = queries()
        self._max_per_owner = max_per_owner
        # Pending rows that no claim could take, even alone: passed over.
        self._unclaimable = Passed()
        self._completions = Completions(pool, self._q, self.log)

    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Job]:
        """Claim up to ``limit`` ready jobs for ``worker_id``, each with a lease of
        ``lease_seconds``.

        One statement in the common case. Should a row make it fail (an
        application trigger that raises, say), the claim is retried one row
        at a time (in the same transaction, with a per-owner limit), and a
        row that cannot be claimed even alone fails (``claim_refuse``) or,
        if even that is refused, is passed over by this process from then
        on: one bad row never stops the queue. A job whose params cannot be decoded comes back with
        ``params_error`` set (see ``Job.from_record``).
        """
        async with self._pool.acquire() as conn:
            if self._max_per_owner is None:
                # One statement, atomic by itself: no transaction around it.
                rows = await self._claim_rows(conn, worker_id, limit, float(lease_seconds))
            else:
                async with conn.transaction():
                    # Claims with a per-owner limit take turns across daemons
                    # (claim_fair_lock), so that the count each one sees is exact.
                    await conn.execute(self._q["claim_fair_lock"])
                    rows = await self._claim_rows(conn, worker_id, limit, float(lease_seconds))
        return [Job.from_record(r) for r in rows]

    async def _claim_rows(
        self, conn: asyncpg.Connection, worker_id: str, limit: int, lease: float
    ) -> list[asyncpg.Record]:
        q = self._q
        passed = self._unclaimable.ids()

        async def run(only: Sequence[uuid.UUID | None]) -> list[asyncpg.Record]:
            ids = None if list(only) == [None] else list(only)
            n = limit if ids is None else len(ids)
            rows: list[asyncpg.Record] = await conn.fetch(
                q["claim"], worker_id, n, lease, self._max_per_owner, ids, passed
            )
            return rows

        whole: list[uuid.UUID | None] = [None]
        rows, failed = await per_row_on_failure(conn, whole, run)
        if not failed:
            return rows
        if conn.is_in_transaction():
            return await self._claim_row_by_row(conn, limit, passed, run)
        # One transaction for the rows claimed one at a time: should an outage
        # end the retry half-way, the rows it had claimed go back to pending
        # with it, instead of staying processing, claimed by a worker that
        # never learns of them, until their lease runs out.
        async with conn.transaction():
            return await self._claim_row_by_row(conn, limit, passed, run)

    async def _claim_row_by_row(
        self,
        conn: asyncpg.Connection,
        limit: int,
        passed: list[uuid.UUID],
        run: Callable[[Sequence[uuid.UUID | None]], Awaitable[list[asyncpg.Record]]],
    ) -> list[asyncpg.Record]:
        """The claim, retried one row at a time after it failed as a whole, so that
        the rows that can be claimed are; ``conn`` is in a transaction."""
        q = self._q
        candidates: list[uuid.UUID | None] = [
            r["id"] for r in await conn.fetch(q["claim_candidates"], limit, passed)
        ]
        rows, failed = await per_row_on_failure(conn, candidates, run)
        if len(failed) > 1 and len(failed) == len(candidates):
            # Every row fails alone: the statement is at fault, not a row,
            # and no job is to be failed for it.
            raise failed[0][1]
        for job_id, exc in failed:
            assert job_id is not None
            await self._refuse(conn, job_id, exc)
        return rows

    async def _refuse(self, conn: asyncpg.Connection, job_id: uuid.UUID, exc: Exception) -> None:
        """Fail a pending row that cannot be claimed, or pass over it when even that fails."""
        message = row_error("the job could not be claimed", exc)
        _, refused = await per_row_on_failure(
            conn,
            [job_id],
            lambda ids: conn.fetch(self._q["claim_refuse"], ids[0], message),
        )
        if refused:
            self._unclaimable.add(job_id)
        self.log.error(
            "job_unclaimable",
            job_id=str(job_id),
            error=message,
            failed=not refused,
            passed_over=bool(refused),
        )

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
                [b.attempt for b in part],
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
            job.attempt,
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
            job.attempt,
            float(delay_seconds),
            error,
            str(kind),
            job.owner,
        )
        return None if row is None else LetGo(row["state"])

    async def fail(self, job: Job, worker_id: str, error: str, kind: ErrorKind) -> bool:
        row = await self._pool.fetchrow(
            self._q["fail"], job.id, worker_id, job.attempt, error, str(kind), job.owner
        )
        return row is not None

    async def release(self, job: Job, worker_id: str) -> LetGo | None:
        row = await self._pool.fetchrow(
            self._q["release"], job.id, worker_id, job.attempt, job.owner
        )
        return None if row is None else LetGo(row["state"])

    async def state_of(self, job_id: uuid.UUID) -> JobState | None:
        row = await self._pool.fetchrow(self._q["job_state"], job_id)
        if row is None:
            return None
        return JobState(
            str(row["state"]), row["worker_id"], int(row["attempts"]), str(row["owner"])
        )
