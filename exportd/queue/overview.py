"""The operator's overview of the queue: what the dashboard shows, in one read.

Every figure comes from the statements named ``overview_*`` in
sql/queries.sql (and the workers' and webhooks' own), run in one read-only
snapshot, so the figures agree with one another. Their cost follows the live
jobs and the jobs finished within the window, never the whole history: each
statement is an index-only scan of a partial index of migration 0013
(``jobs_live_kind_idx``, ``jobs_finished_kind_idx``); a test checks the plans
on a million rows, and bench/overview.py times them.

What "ready" means: a pending job whose ``run_after`` has come and whose kind
is not paused (by its own pause or the pause of every kind) is ready, the one
a free worker would claim; a pending job with a later ``run_after`` is
waiting, one of a paused kind is held.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from exportd.queue import workers
from exportd.queue.pauses import Pause, state_of
from exportd.queue.sql import queries
from exportd.queue.workers import JobProgress, WorkerStatus

# The states counted over a window (by finished_at); the others are counted whole.
TERMINAL_STATES = ("completed", "failed", "cancelled", "expired")
LIVE_STATES = ("pending", "processing")
# Counts of finished jobs: within this many seconds (one day) unless asked otherwise.
FINISHED_WINDOW_SECONDS = 24 * 3600.0
# Throughput and durations: the last hour, in minutes (the current one included).
MINUTES = 60


@dataclass(frozen=True)
class StateCount:
    """``count`` jobs of ``kind`` in ``state``: every pending or processing job;
    of the terminal states, those that finished within the overview's window."""

    state: str
    kind: str
    count: int


@dataclass(frozen=True)
class PendingKind:
    """The pending jobs of ``kind``: ``pending`` in all, ``ready`` of them due now
    (run_after has come), the oldest of those due since ``oldest_ready_at``
    (None: none due), and whether the kind is ``paused`` (its due jobs then wait)."""

    kind: str
    pending: int
    ready: int
    oldest_ready_at: datetime | None
    paused: bool


@dataclass(frozen=True)
class MinuteCount:
    """Jobs that ended in the minute that starts at ``minute`` (UTC): ``completed``
    (those expired since included) and ``failed`` (for good, retries excluded)."""

    minute: datetime
    completed: int
    failed: int


@dataclass(frozen=True)
class KindDurations:
    """Exports of ``kind`` completed within the last hour: how many, and the
    median and 95th percentile of their last attempt's duration, in seconds
    (started_at to finished_at; continuous percentiles)."""

    kind: str
    completed: int
    p50_seconds: float
    p95_seconds: float


@dataclass(frozen=True)
class WebhookBacklog:
    """Webhook deliveries not yet made (sending now or waiting to be), and how
    long ago the oldest of their events happened, in seconds (0 when none)."""

    pending: int
    oldest_seconds: float


@dataclass(frozen=True)
class Overview:
    """The queue at ``as_of`` (the database's clock, UTC).

    ``counts``: jobs by state and kind (terminal states: finished within the
    last ``finished_window_seconds``). ``pending``: each kind with pending jobs.
    ``oldest_ready_seconds``: how long the oldest ready job (due, kind not
    paused) has waited since its run_after, None when none is ready.
    ``minutes``: ``MINUTES`` buckets, oldest first, the last one the current
    minute. ``durations``: by kind, over the last hour. ``paused``: every
    pause. ``webhooks``: the delivery backlog. ``workers``: the daemons alive,
    each with its jobs; ``running``: every processing job, with those whose
    daemon is gone (not yet reaped).
    """

    as_of: datetime
    finished_window_seconds: float
    counts: tuple[StateCount, ...]
    pending: tuple[PendingKind, ...]
    oldest_ready_seconds: float | None
    minutes: tuple[MinuteCount, ...]
    durations: tuple[KindDurations, ...]
    paused: tuple[Pause, ...]
    webhooks: WebhookBacklog
    workers: tuple[WorkerStatus, ...]
    running: tuple[JobProgress, ...]

    def count(self, state: str, kind: str | None = None) -> int:
        """Jobs in ``state`` (of ``kind``; of every kind: None), as counted here."""
        return sum(c.count for c in self.counts if c.state == state and kind in (None, c.kind))


def pending_kinds(rows: Iterable[asyncpg.Record], pauses: Sequence[Pause]) -> list[PendingKind]:
    """The pending rows of ``overview_live``, each kind marked paused or not (pure)."""
    return [
        PendingKind(
            str(r["kind"]),
            int(r["n"]),
            int(r["ready"]),
            r["oldest_ready_at"],
            state_of(str(r["kind"]), pauses).paused,
        )
        for r in rows
        if r["state"] == "pending"
    ]


def oldest_ready(kinds: Iterable[PendingKind], as_of: datetime) -> float | None:
    """Seconds the oldest ready job has waited at ``as_of``: due, of a kind not
    paused; None when there is none (pure)."""
    due = [k.oldest_ready_at for k in kinds if not k.paused and k.oldest_ready_at is not None]
    if not due:
        return None
    return max(0.0, (as_of - min(due)).total_seconds())


async def read_overview(
    pool: asyncpg.Pool, finished_window_seconds: float = FINISHED_WINDOW_SECONDS
) -> Overview:
    """Read the overview in one read-only snapshot (REPEATABLE READ), on one
    connection of ``pool``; ``finished_window_seconds`` bounds the terminal
    states' counts (at least 0). Raises what the driver raises."""
    q = queries()
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        as_of: datetime = await conn.fetchval(q["overview_clock"])
        live = await conn.fetch(q["overview_live"])
        finished = await conn.fetch(q["overview_finished"], float(finished_window_seconds))
        minutes = await conn.fetch(q["overview_minutes"], MINUTES)
        durations = await conn.fetch(q["overview_durations"])
        pauses = [Pause.from_record(r) for r in await conn.fetch(q["paused_kinds"])]
        hooks = await conn.fetchrow(q["webhook_stats"])
        running = await workers.running_jobs(conn)
        alive = workers.with_running(await conn.fetch(q["workers_alive"]), running)
    assert hooks is not None  # one row, always
    pending = pending_kinds(live, pauses)
    return Overview(
        as_of=as_of,
        finished_window_seconds=float(finished_window_seconds),
        counts=tuple(
            StateCount(str(r["state"]), str(r["kind"]), int(r["n"])) for r in [*live, *finished]
        ),
        pending=tuple(pending),
        oldest_ready_seconds=oldest_ready(pending, as_of),
        minutes=tuple(
            MinuteCount(r["minute"], int(r["completed"]), int(r["failed"])) for r in minutes
        ),
        durations=tuple(
            KindDurations(str(r["kind"]), int(r["n"]), float(r["p50"]), float(r["p95"]))
            for r in durations
        ),
        paused=tuple(pauses),
        webhooks=WebhookBacklog(int(hooks["pending"]), float(hooks["oldest_seconds"])),
        workers=tuple(alive),
        running=tuple(running),
    )
