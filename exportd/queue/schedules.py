"""The statements on ``exportd.schedules``: what the API and the CLI read and write,
and the scheduler's round.

A round is one transaction: the due rows are locked (``FOR UPDATE SKIP
LOCKED``), and each schedule's job and its next occurrence are written
under a savepoint of their own, committed with the round. Another daemon
passes over the locked rows, and sees them no longer due once the round
commits: one job per occurrence however many daemons run. A row whose
statements fail is rolled back alone (its savepoint) and the others go on.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from exportd.queue.row_by_row import is_row_error
from exportd.queue.sql import queries


@dataclass(frozen=True)
class NewSchedule:
    """A schedule every check passed; ``next_run_at`` its first occurrence."""

    owner: str
    kind: str
    params: dict[str, Any]
    format: str
    options: dict[str, Any]
    cron: str
    timezone: str
    enabled: bool
    next_run_at: datetime


class ScheduleRefused(Exception):
    """The table refused the schedule's values (a CHECK constraint); ``cause`` is the
    driver's error."""

    def __init__(self, cause: asyncpg.PostgresError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ScheduleStore:
    """The schedules the API and the CLI read and write, on their connections."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, new: NewSchedule) -> asyncpg.Record:
        """The new schedule's row; ScheduleRefused when the table refuses a value."""
        try:
            row: asyncpg.Record = await self._pool.fetchrow(
                queries()["schedule_insert"],
                new.owner,
                new.kind,
                new.params,
                new.format,
                new.options,
                new.cron,
                new.timezone,
                new.enabled,
                new.next_run_at,
            )
        except (asyncpg.CheckViolationError, asyncpg.DataError) as exc:
            raise ScheduleRefused(exc) from exc
        return row

    async def clock(self) -> datetime:
        """The database's clock now: a new schedule's first occurrence is the first
        after it, by the clock the scheduler's rounds compare (a daemon's own clock
        may be off)."""
        now: datetime = await self._pool.fetchval(queries()["schedule_clock"])
        return now

    async def get(self, schedule_id: uuid.UUID) -> asyncpg.Record | None:
        """The schedule's row, or None."""
        row: asyncpg.Record | None = await self._pool.fetchrow(
            queries()["schedule_get"], schedule_id
        )
        return row

    async def list(
        self, owner: str | None, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[asyncpg.Record]:
        """Up to ``limit`` of ``owner``'s schedules (None: everyone's), newest first
        (created_at, then id), after ``after`` (the last of the previous page)."""
        rows: list[asyncpg.Record] = await self._pool.fetch(
            queries()["schedule_list"],
            owner,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return rows

    async def last_jobs(self, rows: Sequence[asyncpg.Record]) -> dict[uuid.UUID, asyncpg.Record]:
        """The state, error kind and end of each schedule's last job (``last_job_id``),
        by job id, in one statement; a job purged since is absent."""
        ids = [r["last_job_id"] for r in rows if r["last_job_id"] is not None]
        if not ids:
            return {}
        found = await self._pool.fetch(queries()["jobs_outcomes"], ids)
        return {r["id"]: r for r in found}

    async def delete(self, schedule_id: uuid.UUID, owner: str | None) -> bool:
        """Delete the schedule (only ``owner``'s, unless None); False when there is none."""
        deleted = await self._pool.fetchval(queries()["schedule_delete"], schedule_id, owner)
        return deleted is not None

    @contextlib.asynccontextmanager
    async def locked(self, schedule_id: uuid.UUID) -> AsyncIterator[LockedSchedule]:
        """The schedule's row locked (``row`` None when there is none), to change it;
        the change commits when the block ends."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(queries()["schedule_lock"], schedule_id)
            yield LockedSchedule(conn, row)


class LockedSchedule:
    """A schedule's row under its lock: ``row`` as it is, and ``update``."""

    def __init__(self, conn: asyncpg.Connection, row: asyncpg.Record | None) -> None:
        self._conn = conn
        self.row = row

    async def clock(self) -> datetime:
        """The database's clock now (see ``ScheduleStore.clock``)."""
        now: datetime = await self._conn.fetchval(queries()["schedule_clock"])
        return now

    async def update(self, changed: NewSchedule) -> asyncpg.Record:
        """Write ``changed``'s params, format, options, cron, timezone, enabled and
        next_run_at (its owner and kind are the row's); ScheduleRefused when the
        table refuses a value."""
        assert self.row is not None
        try:
            row: asyncpg.Record = await self._conn.fetchrow(
                queries()["schedule_update"],
                self.row["id"],
                # Unchanged documents are left as stored (see schedule_update).
                None if changed.params == self.row["params"] else changed.params,
                changed.format,
                None if changed.options == self.row["options"] else changed.options,
                changed.cron,
                changed.timezone,
                changed.enabled,
                changed.next_run_at,
            )
        except (asyncpg.CheckViolationError, asyncpg.DataError) as exc:
            raise ScheduleRefused(exc) from exc
        return row


@dataclass(frozen=True)
class Run:
    """What one due schedule's run writes: the job of ``dedupe_key`` (None: no job),
    the next occurrence, the run's instant (None: nothing ran) and its error
    (None: none)."""

    dedupe_key: str | None
    next_run_at: datetime
    ran_at: datetime | None
    error: str | None


class ScheduleRound:
    """The scheduler's round: the due rows, locked, and each one's run."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def clock(self) -> datetime:
        """The database's clock now: the instant every daemon's rounds compare."""
        now: datetime = await self._conn.fetchval(queries()["schedule_clock"])
        return now

    async def due(self, now: datetime, limit: int, passed: list[uuid.UUID]) -> list[asyncpg.Record]:
        """Up to ``limit`` enabled schedules due at ``now``, locked, but those of
        ``passed``: id, owner, kind, params_text, options_text, format, cron, timezone,
        next_run_at."""
        rows: list[asyncpg.Record] = await self._conn.fetch(
            queries()["schedule_due"], now, limit, passed
        )
        return rows

    async def run(self, schedule_id: uuid.UUID, run: Run) -> uuid.UUID | None:
        """Make the run's job (when it has a dedupe key) and advance the schedule, both
        or neither (a savepoint): the job's id, or None when none was made (no key,
        or a live job of that key exists). Raises what the statements raise."""
        async with self._conn.transaction():
            job_id = None
            if run.dedupe_key is not None:
                job_id = await self._conn.fetchval(
                    queries()["schedule_make_job"], schedule_id, run.dedupe_key
                )
            await self._advance(schedule_id, run, job_id)
        return job_id

    async def record_error(self, schedule_id: uuid.UUID, run: Run) -> bool:
        """Advance the schedule and record ``run.error`` without a job, under a
        savepoint; False when even that is refused for the row's sake (an outage
        is raised)."""
        try:
            async with self._conn.transaction():
                await self._advance(schedule_id, run, None)
        except Exception as exc:
            if not is_row_error(exc):
                raise
            return False
        return True

    async def _advance(self, schedule_id: uuid.UUID, run: Run, job_id: uuid.UUID | None) -> None:
        await self._conn.execute(
            queries()["schedule_advance"],
            schedule_id,
            run.next_run_at,
            run.ran_at,
            job_id,
            run.error,
        )


@contextlib.asynccontextmanager
async def schedule_round(pool: asyncpg.Pool) -> AsyncIterator[ScheduleRound]:
    """A round of the scheduler in its own transaction, committed when the block ends."""
    async with pool.acquire() as conn, conn.transaction():
        yield ScheduleRound(conn)
