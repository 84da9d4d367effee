"""The claim: ready jobs taken for a worker, each under a lease.

One statement in the common case (``claim``: a CTE that selects ready rows
``FOR UPDATE SKIP LOCKED`` and updates them). Should a row make it fail (an
application trigger that raises, say), the claim is retried one row at a
time, and a row that cannot be claimed even alone is failed or passed over
(``row_by_row``): one bad row never stops the queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from exportd.queue.job import Job
from exportd.queue.row_by_row import Passed, per_row_on_failure, row_error
from exportd.queue.sql import Queries


class Claims:
    """The claims of one store: its pool, its per-owner limit, the rows it passes over."""

    def __init__(
        self, pool: asyncpg.Pool, queries: Queries, max_per_owner: int | None, log: Any
    ) -> None:
        self._pool = pool
        self._q = queries
        self._max_per_owner = max_per_owner
        self.log = log
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
