"""``JobStore`` on the ``exportd.jobs`` table, with the named queries of sql/queries.sql."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import asyncpg

from exportd.db import classify_pg_error
from exportd.errors import ErrorKind, ExportError
from exportd.jobs import ExportResult, Heartbeat, Job, JobState, LetGo, UploadRef
from exportd.lease import locked_call_timeout
from exportd.sqlfiles import queries
from exportd.store import Commit


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


def _columns(batch: Sequence[_Completion]) -> tuple[list[uuid.UUID], list[str], list[int]]:
    """Ids, workers and attempts: the claim each guarded statement names."""
    return [c.job.id for c in batch], [c.worker_id for c in batch], [c.job.attempt for c in batch]


class PgJobStore:
    """``JobStore`` on the ``exportd.jobs`` table; every write after the claim is guarded."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_per_owner: int | None = None,
        heartbeat_pool: asyncpg.Pool | None = None,
    ) -> None:
        self._pool = pool
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

    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Job]:
        args = (worker_id, limit, float(lease_seconds), self._max_per_owner)
        if self._max_per_owner is None:
            rows = await self._pool.fetch(self._q["claim"], *args)
        else:
            # Claims with a per-owner limit take turns across daemons
            # (claim_fair_lock), so that the count each one sees is exact.
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(self._q["claim_fair_lock"])
                rows = await conn.fetch(self._q["claim"], *args)
        return [Job.from_record(r) for r in rows]

    async def heartbeat(
        self, worker_id: str, lease_seconds: float, beats: Sequence[Heartbeat]
    ) -> set[uuid.UUID]:
        if not beats:
            return set()
        rows = await self._heartbeat_pool.fetch(
            self._q["heartbeat"],
            worker_id,
            float(lease_seconds),
            [b.job_id for b in beats],
            [b.attempt for b in beats],
            [b.rows for b in beats],
            [b.bytes for b in beats],
            [b.percent for b in beats],
        )
        return {r["id"] for r in rows}

    async def record_upload(self, job: Job, worker_id: str, ref: UploadRef) -> bool:
        row = await self._pool.fetchrow(
            self._q["record_upload"], job.id, worker_id, job.attempt, ref.upload_id, ref.key
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
            # recording it.
            await conn.execute(
                q["renew_locked"], *_columns(failed), [float(c.lease) for c in failed]
            )
        if good:
            await conn.execute(
                q["complete"],
                *_columns([c for c, _ in good]),
                [float(c.retention) for c, _ in good],
                [r.object_key for _, r in good],
                [r.size_bytes for _, r in good],
                [r.row_count for _, r in good],
                [r.sha256_hex for _, r in good],
            )
        return settled + list(zip(owned, outcomes, strict=True))

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
        )
        return None if row is None else LetGo(row["state"])

    async def fail(self, job: Job, worker_id: str, error: str, kind: ErrorKind) -> bool:
        row = await self._pool.fetchrow(
            self._q["fail"], job.id, worker_id, job.attempt, error, str(kind)
        )
        return row is not None

    async def release(self, job: Job, worker_id: str) -> LetGo | None:
        row = await self._pool.fetchrow(self._q["release"], job.id, worker_id, job.attempt)
        return None if row is None else LetGo(row["state"])

    async def state_of(self, job_id: uuid.UUID) -> JobState | None:
        row = await self._pool.fetchrow(self._q["job_state"], job_id)
        if row is None:
            return None
        return JobState(str(row["state"]), row["worker_id"], int(row["attempts"]))
