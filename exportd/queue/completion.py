"""Completion: a job's object committed under its row's lock, then its row recorded.

One place for the whole of it. A worker hands over a job whose export is
written, with the object's commit (``Completions.submit``), and gets a
``Completing`` back at once; from then on this module:

- batches the completions that arrive in one turn of the event loop into one
  transaction (a job that ends alone is completed alone, at once);
- locks the rows still owned by the worker, claim and owner that claimed
  them (``lock_owned``): a job lost meanwhile is answered None, and its object
  is never committed;
- commits each owned job's object while its row is locked, side by side,
  each within ``lease.locked_call_timeout``, and answers ``committed`` as
  soon as one is (the worker then frees the job's slot);
- records the committed jobs in one statement (``complete``), and renews the
  lease of those whose commit failed (``renew_locked``), so that the reaper
  cannot take them before their worker records the failure; a row that
  refuses its statement is handled alone (``row_by_row``);
- answers each ``outcome`` only once the transaction has committed.

The order is the guarantee: an object is committed only under its row's lock,
and a job is reported completed only once its row says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from exportd.database import classify_pg_error
from exportd.errors import ErrorKind, ExportError
from exportd.queue.interface import Commit, Completing
from exportd.queue.job import ExportResult, Job
from exportd.queue.lease import locked_call_timeout
from exportd.queue.row_by_row import per_row_on_failure, row_error
from exportd.queue.sql import Queries


async def commit_within(commit: Commit, lease_seconds: float) -> ExportResult:
    """``commit()``, bounded to a third of the lease (``locked_call_timeout``).

    It runs while the row is locked, and a store that accepts the request and
    never answers must not keep the job in ``processing`` beyond its lease.
    Raises ``ExportError`` (``storage_unavailable``) past the deadline: the
    commit is abandoned and the job retried; whatever ``commit`` raises
    propagates as it is.
    """
    seconds = locked_call_timeout(lease_seconds)
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await commit()
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
def lost_connection_as_outage(what: str) -> Iterator[None]:
    """Database errors that mean an outage become DATABASE_UNAVAILABLE ExportErrors;
    any other error propagates as it is."""
    try:
        yield
    except Exception as exc:
        error = classify_pg_error(exc, what)
        if error.kind is not ErrorKind.DATABASE_UNAVAILABLE:
            raise
        raise error from exc


@dataclass(eq=False)  # compared by identity: two may name the same job
class _Request:
    """A job handed over to be completed, and where its answers go."""

    job: Job
    worker_id: str
    retention: float
    lease: float
    commit: Commit
    answer: Completing


# What became of one request: its result, None (lost) or its error.
_Outcome = ExportResult | BaseException | None


def _columns(
    batch: Sequence[_Request],
) -> tuple[list[uuid.UUID], list[str], list[int], list[str]]:
    """Ids, workers, claim numbers and owners: the claim each guarded statement names."""
    return (
        [c.job.id for c in batch],
        [c.worker_id for c in batch],
        [c.job.claim for c in batch],
        [c.job.owner for c in batch],
    )


class Completions:
    """The completions of one store: batched, locked, committed, recorded, answered."""

    def __init__(self, pool: asyncpg.Pool, queries: Queries, log: Any) -> None:
        self._pool = pool
        self._q = queries
        self.log = log
        # The batch still taking completions (its flush has not started),
        # and the flushes under way.
        self._open_batch: list[_Request] | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def submit(
        self,
        job: Job,
        worker_id: str,
        retention_seconds: float,
        lease_seconds: float,
        commit: Commit,
    ) -> Completing:
        """Hand ``job`` over; returns its answers to come (see ``JobStore.begin_completion``).

        Completions that arrive together share one transaction. "Together" is
        one turn of the event loop: the jobs of a claim that end at once
        (short jobs, a backlog) are locked, committed to S3 side by side and
        recorded in one round of statements, where each would otherwise pay a
        transaction of its own. A job that ends alone is completed alone, as
        soon as it asks: nothing waits for a batch to fill.
        """
        answer = Completing()
        batch = self._open_batch
        if batch is None:
            batch = self._open_batch = []
            flush = asyncio.create_task(self._flush(batch), name="exportd-complete")
            self._flushes.add(flush)
            flush.add_done_callback(functools.partial(self._flushed, batch))
        batch.append(_Request(job, worker_id, retention_seconds, lease_seconds, commit, answer))
        return answer

    async def _flush(self, batch: list[_Request]) -> None:
        # The flush starts after the turn that opened the batch: every
        # completion of that turn is in it; later ones open a batch of their
        # own, which may be flushed while this one is.
        if self._open_batch is batch:
            self._open_batch = None
        try:
            # Only once the transaction has committed is a job answered.
            settled = await self._complete_batch(batch)
        except Exception as exc:
            settled = [(c, exc) for c in batch]
        for c, outcome in settled:
            c.answer.settle(outcome)

    def _flushed(self, batch: list[_Request], flush: asyncio.Task[None]) -> None:
        self._flushes.discard(flush)
        # A flush cancelled (even before it started) leaves no waiter hanging.
        for c in batch:
            c.answer.give_up()

    async def _complete_batch(self, batch: list[_Request]) -> list[tuple[_Request, _Outcome]]:
        # A queue connection lost around the commits (a restart, a dropped
        # connection) is an outage, retried like one, rather than an
        # "unexpected" error, for every job of the batch: none of them is
        # recorded, and an object that was committed is written again by the
        # next attempt under the same key.
        with lost_connection_as_outage("recording the completion"):
            async with self._pool.acquire() as conn, conn.transaction():
                return await self._lock_commit_record(conn, batch)

    async def _lock_commit_record(
        self, conn: asyncpg.Connection, batch: list[_Request]
    ) -> list[tuple[_Request, _Outcome]]:
        """The statements of one completing transaction; the outcome of each job."""
        q = self._q
        rows = await conn.fetch(q["lock_owned"], *_columns(batch))
        owned_keys = {(r["id"], r["claims"]) for r in rows}
        owned = [c for c in batch if (c.job.id, c.job.claim) in owned_keys]
        settled: list[tuple[_Request, _Outcome]] = [(c, None) for c in batch if c not in owned]

        async def commit(c: _Request) -> ExportResult:
            result = await commit_within(c.commit, c.lease)
            c.answer.object_committed()
            return result

        # Each object is committed under its row's lock; the commits of one
        # batch go out side by side.
        outcomes = await asyncio.gather(*(commit(c) for c in owned), return_exceptions=True)
        failed = [c for c, r in zip(owned, outcomes, strict=True) if isinstance(r, BaseException)]
        good = [(c, r) for c, r in zip(owned, outcomes, strict=True) if isinstance(r, ExportResult)]
        if failed:
            await self._renew(conn, failed)
        unrecorded = await self._record(conn, good)
        return settled + [
            (c, unrecorded.get(id(c), outcome)) for c, outcome in zip(owned, outcomes, strict=True)
        ]

    async def _renew(self, conn: asyncpg.Connection, failed: list[_Request]) -> None:
        """Renew the leases of the jobs whose commit failed.

        Still ours and still locked: renew before letting go, so the reaper
        cannot take a job between this failure and the worker recording it.
        A row that refuses even this is left to its lease: the worker records
        the commit's failure next.
        """

        async def renew(part: Sequence[_Request]) -> list[None]:
            await conn.execute(
                self._q["renew_locked"], *_columns(part), [float(c.lease) for c in part]
            )
            return []

        _, unrenewed = await per_row_on_failure(conn, failed, renew)
        for c, exc in unrenewed:
            self.log.error(
                "renewal_refused",
                job_id=str(c.job.id),
                error=row_error("the lease could not be renewed", exc),
            )

    async def _record(
        self, conn: asyncpg.Connection, good: list[tuple[_Request, ExportResult]]
    ) -> dict[int, BaseException]:
        """Mark the committed jobs completed; returns the error of each job that
        could not be, by ``id()`` of its request."""

        async def record(part: Sequence[tuple[_Request, ExportResult]]) -> list[None]:
            await conn.execute(
                self._q["complete"],
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
            message = row_error("the completion could not be recorded", exc)
            self.log.error("completion_refused", job_id=str(c.job.id), error=message)
            unrecorded[id(c)] = ExportError(ErrorKind.INTERNAL, message)
        return unrecorded
