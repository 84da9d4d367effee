"""``JobStore`` on the ``exportd.jobs`` table, with the named queries of sql/queries.sql.

``PgJobStore`` is the queue's one front door: the worker, the API, the CLI
and maintenance all run the queue's statements through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from exportd.database import classify_pg_error
from exportd.errors import ErrorKind, ExportError, bounded_message
from exportd.metrics import QueueSnapshot
from exportd.queue import reads, upkeep
from exportd.queue.cancel import LockedJob, locked_job
from exportd.queue.enqueue import Enqueued, NewJob, enqueue
from exportd.queue.interface import Commit
from exportd.queue.isolation import Passed, per_row_on_failure
from exportd.queue.job import ExportResult, Heartbeat, Job, JobState, LetGo, UploadRef
from exportd.queue.lease import locked_call_timeout
from exportd.queue.sql import queries


async def _commit_within(c: _Completion) -> ExportResult:
    """The object's commit, bounded to a third of the lease: it runs while the row
    is locked, and a store that accepts the request and never answers must not
    keep the job in ``processing`` beyond its lease. Past the deadline the
    commit is abandoned and the job retried as ``storage_unavailable``."""
    seconds = locked_call_timeout(c.lease)
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await c.commit()
    except TimeoutError:
        if not scope.expired():
            raise
        raise ExportError(
            ErrorKind.STORAGE_UNAVAILABLE,
            f"S3 did not confirm the object's commit within {seconds:g} s (a third of the "
            "lease, while the job's row was locked); check the store's health, or raise "
            "EXPORTD_LEASE_SECONDS for objects the store takes longer to assemble",
        ) from None


@contextlib.contextmanager
def _lost_connection_as_outage(what: str) -> Iterator[None]:
    """Database errors that mean an outage become DATABASE_UNAVAILABLE ExportErrors."""
    try:
        yield
    except Exception as exc:
        error = classify_pg_error(exc, what)
        if error.kind is not ErrorKind.DATABASE_UNAVAILABLE:
            raise
        raise error from exc


@dataclass(eq=False)  # compared by identity: two may name the same job
class _Completion:
    """A job asking to be completed, and where its outcome goes."""

    job: Job
    worker_id: str
    retention: float
    lease: float
    commit: Commit
    done: asyncio.Future[ExportResult | None]


def _columns(
    batch: Sequence[_Completion],
) -> tuple[list[uuid.UUID], list[str], list[int], list[str]]:
    """Ids, workers, attempts and owners: the claim each guarded statement names."""
    return (
        [c.job.id for c in batch],
        [c.worker_id for c in batch],
        [c.job.attempt for c in batch],
        [c.job.owner for c in batch],
    )


def _row_error(what: str, exc: Exception) -> str:
    """The message of a row that a batch statement could not process, bounded."""
    return bounded_message(f"{what}: {exc.__class__.__name__}: {exc}")


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
        self._max_per_owner = max_per_owner
        # The batch still taking completions (its flush has not started),
        # and the flushes under way.
        self._open_batch: list[_Completion] | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        # Pending rows that no claim could take, even alone: passed over.
        self._unclaimable = Passed()

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
        message = _row_error("the job could not be claimed", exc)
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
                error=_row_error("the lease could not be renewed", exc),
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

    async def complete(
        self,
        job: Job,
        worker_id: str,
        retention_seconds: float,
        lease_seconds: float,
        commit: Commit,
    ) -> ExportResult | None:
        """Completions that arrive together share one transaction.

        "Together" is one turn of the event loop: the jobs of a claim that end
        at once (short jobs, a backlog) are locked, committed to S3 side by
        side and recorded in one round of statements, where each would
        otherwise pay a transaction of its own. A job that ends alone is
        completed alone, as soon as it asks: nothing waits for a batch to fill.
        """
        done: asyncio.Future[ExportResult | None] = asyncio.get_running_loop().create_future()
        batch = self._open_batch
        if batch is None:
            batch = self._open_batch = []
            flush = asyncio.create_task(self._flush_completions(batch), name="exportd-complete")
            self._flushes.add(flush)
            flush.add_done_callback(functools.partial(self._flushed, batch))
        batch.append(_Completion(job, worker_id, retention_seconds, lease_seconds, commit, done))
        return await done

    async def _flush_completions(self, batch: list[_Completion]) -> None:
        # The flush starts after the turn that opened the batch: every
        # completion of that turn is in it; later ones open a batch of their
        # own, which may be flushed while this one is.
        if self._open_batch is batch:
            self._open_batch = None
        try:
            await self._complete_batch(batch)
        except Exception as exc:
            for c in batch:
                if not c.done.done():
                    c.done.set_exception(exc)

    def _flushed(self, batch: list[_Completion], flush: asyncio.Task[None]) -> None:
        self._flushes.discard(flush)
        # A flush cancelled (even before it started) leaves no waiter hanging.
        for c in batch:
            if not c.done.done():
                c.done.cancel()

    async def _complete_batch(self, batch: list[_Completion]) -> None:
        # A queue connection lost around the commits (a restart, a dropped
        # connection) is an outage, retried like one, rather than an
        # "unexpected" error, for every job of the batch: none of them is
        # recorded, and an object that was committed is written again by the
        # next attempt under the same key.
        with _lost_connection_as_outage("recording the completion"):
            async with self._pool.acquire() as conn, conn.transaction():
                settled = await self._lock_commit_record(conn, batch)
        # Only once the transaction has committed is a job reported completed.
        for c, outcome in settled:
            if c.done.done():
                continue
            if isinstance(outcome, BaseException):
                c.done.set_exception(outcome)
            else:
                c.done.set_result(outcome)

    async def _lock_commit_record(
        self, conn: asyncpg.Connection, batch: list[_Completion]
    ) -> list[tuple[_Completion, ExportResult | BaseException | None]]:
        """The statements of one completing transaction; the outcome of each job."""
        q = self._q
        rows = await conn.fetch(q["lock_owned"], *_columns(batch))
        owned_keys = {(r["id"], r["attempts"]) for r in rows}
        owned = [c for c in batch if (c.job.id, c.job.attempt) in owned_keys]
        settled: list[tuple[_Completion, ExportResult | BaseException | None]]
        settled = [(c, None) for c in batch if c not in owned]
        # Each object is committed under its row's lock; the commits of one
        # batch go out side by side.
        outcomes = await asyncio.gather(*(_commit_within(c) for c in owned), return_exceptions=True)
        failed = [c for c, r in zip(owned, outcomes, strict=True) if isinstance(r, BaseException)]
        good = [(c, r) for c, r in zip(owned, outcomes, strict=True) if isinstance(r, ExportResult)]
        if failed:
            # Still ours and still locked: renew before letting go, so the
            # reaper cannot take a job between this failure and the worker
            # recording it. A row that refuses even this is left to its
            # lease: the worker records the commit's failure next.
            async def renew(part: Sequence[_Completion]) -> list[None]:
                await conn.execute(
                    q["renew_locked"], *_columns(part), [float(c.lease) for c in part]
                )
                return []

            _, unrenewed = await per_row_on_failure(conn, failed, renew)
            for c, exc in unrenewed:
                self.log.error(
                    "renewal_refused",
                    job_id=str(c.job.id),
                    error=_row_error("the lease could not be renewed", exc),
                )

        async def record(part: Sequence[tuple[_Completion, ExportResult]]) -> list[None]:
            await conn.execute(
                q["complete"],
                *_columns([c for c, _ in part]),
                [float(c.retention) for c, _ in part],
                [r.object_key for _, r in part],
                [r.size_bytes for _, r in part],
                [r.row_count for _, r in part],
                [r.sha256_hex for _, r in part],
                [r.filename or None for _, r in part],
            )
            return []

        # One statement for the batch; should a row make it fail, each job is
        # recorded alone, and the one that cannot be fails alone.
        _, refused = await per_row_on_failure(conn, good, record)
        unrecorded: dict[int, BaseException] = {}
        for (c, _), exc in refused:
            message = _row_error("the completion could not be recorded", exc)
            self.log.error("completion_refused", job_id=str(c.job.id), error=message)
            unrecorded[id(c)] = ExportError(ErrorKind.INTERNAL, message)
        return settled + [
            (c, unrecorded.get(id(c), outcome)) for c, outcome in zip(owned, outcomes, strict=True)
        ]

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

    # --- For the API, the CLI and maintenance (the statements are in the modules named) ---

    async def enqueue(self, job: NewJob) -> Enqueued:
        """``exportd.queue.enqueue.enqueue`` on the API's connections."""
        return await enqueue(self._api_pool, job)

    async def job(self, job_id: uuid.UUID) -> asyncpg.Record | None:
        """The job's whole row, or None (``reads.job``)."""
        return await reads.job(self._api_pool, job_id)

    async def list_jobs(
        self,
        owner: str,
        *,
        states: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        after: tuple[datetime, uuid.UUID] | None = None,
        limit: int,
    ) -> list[asyncpg.Record]:
        """A page of ``owner``'s jobs, newest first (``reads.list_jobs``)."""
        return await reads.list_jobs(
            self._api_pool,
            owner,
            states=states,
            kinds=kinds,
            created_after=created_after,
            created_before=created_before,
            after=after,
            limit=limit,
        )

    def locked_job(self, job_id: uuid.UUID) -> AbstractAsyncContextManager[LockedJob]:
        """The job's row locked, to cancel or expire it (``cancel.locked_job``)."""
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
