"""The daemons alive, and the jobs they run: the rows of ``exportd.workers``.

Each daemon keeps one row while it runs (``exportd.daemon.presence``): it
announces itself at start, again at every heartbeat (the same upsert, so a
row pruned while the daemon stalled comes back), and retires its row when it
stops cleanly. A row is alive while its last heartbeat is within
``STALE_BEATS`` of its own interval (the rule is in the SQL: workers_alive,
workers_prune); maintenance deletes the others (``WorkersPrune``).

What a daemon runs is not stored here: ``exportd.jobs`` names the worker of
each processing job, and one statement reads them all with their progress
(``running_jobs``), whatever the number of daemons.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from exportd import limits
from exportd.queue.sql import queries

# Heartbeats a row may miss before it is no longer alive (and is pruned).
# The number is the SQL's (workers_alive, workers_prune); a test holds it.
STALE_BEATS = 3


@dataclass(frozen=True)
class WorkerIdentity:
    """What a daemon registers: its ``worker_id`` (exportd.jobs.worker_id), exportd's
    ``version``, the ``host`` and ``pid`` it runs as, when it started (UTC), its
    ``concurrency`` (jobs at once) and its heartbeat interval in seconds.

    ``bounded`` cuts ``host`` and ``version`` to the table's bounds (bytes of
    UTF-8, ``limits.WORKER_HOST_MAX_BYTES``, ``WORKER_VERSION_MAX_BYTES``).
    """

    worker_id: str
    version: str
    host: str
    pid: int
    started_at: datetime
    concurrency: int
    heartbeat_seconds: float

    def bounded(self) -> WorkerIdentity:
        """The same identity with host and version within the table's bounds."""
        return WorkerIdentity(
            self.worker_id,
            limits.cut_utf8(self.version, limits.WORKER_VERSION_MAX_BYTES),
            limits.cut_utf8(self.host, limits.WORKER_HOST_MAX_BYTES),
            self.pid,
            self.started_at,
            self.concurrency,
            self.heartbeat_seconds,
        )


@dataclass(frozen=True)
class JobProgress:
    """A processing job as its last heartbeat left it: ``progress`` in percent
    (0-100), ``rows_written`` and ``bytes_written`` so far, the attempt it is on
    (``attempts`` of ``max_attempts``), since ``started_at`` (this attempt), and
    the lease its ``worker_id`` holds until ``lease_expires_at``."""

    id: uuid.UUID
    owner: str
    kind: str
    worker_id: str
    progress: int
    rows_written: int
    bytes_written: int
    attempts: int
    max_attempts: int
    started_at: datetime | None
    lease_expires_at: datetime

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> JobProgress:
        return cls(
            row["id"],
            str(row["owner"]),
            str(row["kind"]),
            str(row["worker_id"]),
            int(row["progress"]),
            int(row["rows_written"]),
            int(row["bytes_written"]),
            int(row["attempts"]),
            int(row["max_attempts"]),
            row["started_at"],
            row["lease_expires_at"],
        )


@dataclass(frozen=True)
class WorkerStatus:
    """A daemon alive now: its registration, its last heartbeat (UTC), the
    jobs it runs (``running``, oldest start first), and how many seconds ago
    the heartbeat was, by the database's clock (``heartbeat_age_seconds``)."""

    worker_id: str
    version: str
    host: str
    pid: int
    started_at: datetime
    concurrency: int
    heartbeat_seconds: float
    last_heartbeat_at: datetime
    running: tuple[JobProgress, ...]
    heartbeat_age_seconds: float = 0.0


def with_running(
    workers: Iterable[asyncpg.Record], running: Sequence[JobProgress]
) -> list[WorkerStatus]:
    """Each worker row with the jobs of ``running`` whose worker it is (pure)."""
    by_worker: dict[str, list[JobProgress]] = {}
    for job in running:
        by_worker.setdefault(job.worker_id, []).append(job)
    return [
        WorkerStatus(
            str(w["id"]),
            str(w["version"]),
            str(w["host"]),
            int(w["pid"]),
            w["started_at"],
            int(w["concurrency"]),
            float(w["heartbeat_seconds"]),
            w["last_heartbeat_at"],
            tuple(by_worker.get(str(w["id"]), ())),
            float(w["heartbeat_age"]),
        )
        for w in workers
    ]


async def announce(pool: asyncpg.Pool, identity: WorkerIdentity) -> None:
    """Insert the daemon's row, or refresh its heartbeat (the same statement:
    a row pruned meanwhile comes back). Host and version are cut to their bounds;
    raises what the driver raises (a worker id over its bound: CheckViolationError)."""
    i = identity.bounded()
    await pool.execute(
        queries()["worker_announce"],
        i.worker_id,
        i.version,
        i.host,
        i.pid,
        i.started_at,
        i.concurrency,
        float(i.heartbeat_seconds),
    )


async def retire(pool: asyncpg.Pool, worker_id: str) -> bool:
    """Delete the daemon's row (a clean stop); whether there was one."""
    row = await pool.fetchrow(queries()["worker_retire"], worker_id)
    return row is not None


async def prune(pool: asyncpg.Pool) -> int:
    """Delete the rows no longer alive (``STALE_BEATS`` heartbeats missed); how many."""
    rows = await pool.fetch(queries()["workers_prune"])
    return len(rows)


async def running_jobs(conn: asyncpg.Pool | asyncpg.Connection) -> list[JobProgress]:
    """Every processing job with its progress, oldest start first: one statement
    for all of them (the partial indexes on processing rows serve it)."""
    rows = await conn.fetch(queries()["jobs_running"])
    return [JobProgress.from_record(r) for r in rows]


async def alive(conn: asyncpg.Pool | asyncpg.Connection) -> list[WorkerStatus]:
    """The daemons alive now, oldest start first, each with the jobs it runs.

    Two statements; a job whose worker is not alive (it died, the reaper has
    not yet taken the job back) is in ``running_jobs`` and under no worker here.
    """
    workers = await conn.fetch(queries()["workers_alive"])
    return with_running(workers, await running_jobs(conn))
