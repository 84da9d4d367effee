"""Cancelling a job, or expiring a completed export, on request (DELETE /v1/jobs/{id}).

The decision is made on the row as it is while nobody else can change it:
the row stays locked from the read to the update, so a job cannot complete
between the decision and the cancel, and a completed job's object can be
deleted (by the caller, under the lock) before the row says ``expired``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

from exportd.queue.sql import queries


class LockedJob:
    """A job's row, locked until the ``locked_job`` block ends; ``row`` is None when
    there is no such job, and follows each change made through this object."""

    def __init__(self, conn: asyncpg.Connection, row: asyncpg.Record | None) -> None:
        self._conn = conn
        self.row = row

    async def cancel(self) -> asyncpg.Record:
        """Cancel the pending or processing job (``exportd.cancel``); its row after."""
        assert self.row is not None
        q = queries()
        await self._conn.fetchval(q["cancel"], self.row["id"])
        self.row = await self._conn.fetchrow(q["get_job"], self.row["id"])
        assert self.row is not None  # locked: it cannot have gone
        return self.row

    async def expire(self) -> asyncpg.Record:
        """Mark the completed job ``expired``, its object deleted; its row after."""
        assert self.row is not None
        self.row = await self._conn.fetchrow(queries()["api_expire"], self.row["id"])
        assert self.row is not None  # locked and completed: it is updated
        return self.row


@contextlib.asynccontextmanager
async def locked_job(pool: asyncpg.Pool, job_id: uuid.UUID) -> AsyncIterator[LockedJob]:
    """The job's row locked (FOR UPDATE) in a transaction that commits when the
    block ends, and rolls back when it raises."""
    async with pool.acquire() as conn, conn.transaction():
        yield LockedJob(conn, await conn.fetchrow(queries()["api_lock_job"], job_id))
