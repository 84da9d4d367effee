"""The statements of the maintenance rounds: reaper, retention, purge, upload sweep.

Each round is one transaction under its own transaction-level advisory lock,
so that any number of daemons can run maintenance and each round is done by
one of them. ``upkeep_round`` opens it, or yields None when another daemon
holds the lock; the round's rows are locked (SKIP LOCKED) until it ends, so
the S3 requests a round makes in between (deleting objects, aborting
uploads) happen while no one else can change those rows. A batch statement
that a row refuses is retried row by row (``per_row_on_failure``): the
refused rows come back with their errors, and the others are done.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import asyncpg

from exportd.queue.row_by_row import per_row_on_failure
from exportd.queue.sql import queries

Refused = list[tuple[uuid.UUID, Exception]]


@dataclass(frozen=True)
class Reap:
    """What becomes of one job whose lease ran out."""

    job_id: uuid.UUID
    state: str  # 'pending' or 'failed'
    delay: float  # seconds before a pending job may run again
    message: str


class _Round:
    lock: ClassVar[str]  # the named query that takes the round's advisory lock

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn


class ReapRound(_Round):
    lock = "reap_lock"

    async def expired_leases(self, limit: int, passed: list[uuid.UUID]) -> list[asyncpg.Record]:
        """Up to ``limit`` processing jobs whose lease ran out, locked, oldest lease
        first, but those of ``passed``: id, owner, kind, attempts, max_attempts,
        worker_id, upload_id, upload_key."""
        rows: list[asyncpg.Record] = await self._conn.fetch(queries()["reap_select"], limit, passed)
        return rows

    async def reap(
        self, decisions: Sequence[Reap]
    ) -> tuple[list[asyncpg.Record], list[tuple[Reap, Exception]]]:
        """Apply ``decisions``: the (id, state) of each job updated, and those refused."""

        async def update(part: Sequence[Reap]) -> list[asyncpg.Record]:
            done: list[asyncpg.Record] = await self._conn.fetch(
                queries()["reap_update"],
                [d.job_id for d in part],
                [d.state for d in part],
                [d.delay for d in part],
                [d.message for d in part],
            )
            return done

        return await per_row_on_failure(self._conn, decisions, update)


class RetentionRound(_Round):
    lock = "retention_lock"

    async def due(self, limit: int, passed: list[uuid.UUID]) -> list[asyncpg.Record]:
        """Up to ``limit`` completed jobs past their download period, locked, oldest
        first, but those of ``passed``: id, owner, kind, object_key."""
        rows: list[asyncpg.Record] = await self._conn.fetch(
            queries()["retention_select"], limit, passed
        )
        return rows

    async def expire(self, ids: Sequence[uuid.UUID]) -> tuple[set[uuid.UUID], Refused]:
        """Mark ``ids`` expired (their objects are deleted): the ids updated, and those refused."""

        async def update(part: Sequence[uuid.UUID]) -> list[asyncpg.Record]:
            done: list[asyncpg.Record] = await self._conn.fetch(
                queries()["retention_expire"], list(part)
            )
            return done

        rows, refused = await per_row_on_failure(self._conn, ids, update)
        return {r["id"] for r in rows}, refused


class PurgeRound(_Round):
    lock = "purge_lock"

    async def old(
        self, history_seconds: float, limit: int, passed: list[uuid.UUID]
    ) -> list[uuid.UUID]:
        """Up to ``limit`` failed, cancelled or expired jobs that finished over
        ``history_seconds`` ago, locked, oldest first, but those of ``passed``."""
        rows = await self._conn.fetch(queries()["purge_select"], history_seconds, limit, passed)
        return [r["id"] for r in rows]

    async def delete(self, ids: Sequence[uuid.UUID]) -> tuple[list[uuid.UUID], Refused]:
        """Delete the rows of ``ids``: the ids deleted, and those refused."""

        async def delete(part: Sequence[uuid.UUID]) -> list[asyncpg.Record]:
            done: list[asyncpg.Record] = await self._conn.fetch(
                queries()["purge_delete"], list(part)
            )
            return done

        rows, refused = await per_row_on_failure(self._conn, ids, delete)
        return [r["id"] for r in rows], refused


class SweepRound(_Round):
    lock = "sweep_lock"

    async def live_uploads(self) -> dict[uuid.UUID, str | None]:
        """Each processing job, with its recorded upload id (None while it has none)."""
        rows = await self._conn.fetch(queries()["sweep_live_uploads"])
        return {r["id"]: r["upload_id"] for r in rows}


RoundT = TypeVar("RoundT", bound=_Round)


@contextlib.asynccontextmanager
async def upkeep_round(pool: asyncpg.Pool, kind: type[RoundT]) -> AsyncIterator[RoundT | None]:
    """A round of ``kind`` in its own transaction, committed when the block ends;
    None when another daemon is doing this round now."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(queries()[kind.lock]):
            yield None
        else:
            yield kind(conn)


class WebhookPurgeRound(_Round):
    lock = "webhook_purge_lock"

    async def purge(self, history_seconds: float, limit: int) -> int:
        """Delete up to ``limit`` webhook deliveries (with their attempts) that
        finished over ``history_seconds`` ago; returns how many. Only daemon-owned
        rows, and no trigger: the statement is not refused row by row."""
        rows = await self._conn.fetch(queries()["webhook_purge"], history_seconds, limit)
        return len(rows)
