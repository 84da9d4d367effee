"""``JobStore`` on the ``exportd.jobs`` table, with the named queries of sql/queries.sql."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence

import asyncpg

from exportd.db import classify_pg_error
from exportd.errors import ErrorKind
from exportd.jobs import ExportResult, Heartbeat, Job, JobState, LetGo, UploadRef
from exportd.sqlfiles import queries
from exportd.store import Commit


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
        failure: BaseException | None = None
        # A queue connection lost around the commit (a restart, a dropped
        # connection) is an outage, retried like one, rather than an
        # "unexpected" error; the object, if it was committed, is written
        # again by the next attempt under the same key.
        with _lost_connection_as_outage("recording the completion"):
            async with self._pool.acquire() as conn, conn.transaction():
                owned = await conn.fetchrow(self._q["lock_owned"], job.id, worker_id, job.attempt)
                if owned is None:
                    return None
                try:
                    result = await commit()
                except BaseException as exc:
                    # Still ours and still locked: renew before letting go, so
                    # the reaper cannot take the job between this failure and
                    # the worker recording it.
                    await conn.execute(
                        self._q["renew_locked"],
                        job.id,
                        worker_id,
                        job.attempt,
                        float(lease_seconds),
                    )
                    failure = exc
                else:
                    await conn.execute(
                        self._q["complete"],
                        job.id,
                        worker_id,
                        job.attempt,
                        float(retention_seconds),
                        result.object_key,
                        result.size_bytes,
                        result.row_count,
                        result.sha256_hex,
                    )
        if failure is not None:
            raise failure
        return result

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
