"""The SIGKILL that lands in the middle of a multipart upload, and its evidence.

A kill at a random moment mostly finds a daemon between uploads, or S3
away: the path where a dead worker's open upload is aborted for it (by the
reaper, or by the sweep of orphaned uploads when S3 was down too) would then
go untested. So some of the plan's kills pick their victim when they strike:
among the daemons running a job whose upload is open (``upload_id`` recorded
on a ``processing`` row), waiting a bounded time for such a moment. Which of
the candidates dies is still the seed's choice (``Fault.pick``).

The kill is confirmed afterwards: the victim's rows that still hold their
upload are the uploads it left open, and each must later be aborted, as the
daemons' logs (``orphan_upload_aborted``) show.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

from tests.support.fault_fleet import Fleet
from tests.support.fault_schedule import Fault

T = TypeVar("T")

# How long a mid-upload kill waits for a daemon with an open upload. Large
# jobs keep arriving over most of the window and hold their upload open for
# seconds; this outlasts an S3 outage, during which no upload starts.
MID_UPLOAD_WAIT = 30.0

_OPEN_UPLOADS = (
    "SELECT id, worker_id, upload_id FROM exportd.jobs"
    " WHERE state = 'processing' AND upload_id IS NOT NULL ORDER BY id"
)
_STILL_OPEN = (
    "SELECT id, upload_id FROM exportd.jobs"
    " WHERE state = 'processing' AND worker_id = $1 AND upload_id = ANY($2::text[])"
)


@dataclass(frozen=True)
class OpenUpload:
    """A processing job's recorded multipart upload."""

    job_id: uuid.UUID
    worker_id: str
    upload_id: str


@dataclass
class MidUploadKills:
    """What the mid-upload kills of a run did, for the checks and the journal."""

    landed: dict[str, uuid.UUID] = field(default_factory=dict)  # upload id -> job id
    missed: list[str] = field(default_factory=list)  # why a kill found no open upload


def pid_of(worker_id: str) -> int | None:
    """The pid in a worker id ``host:pid:suffix`` (exportd.worker.new_worker_id)."""
    parts = worker_id.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return int(parts[1])


def choose_victim(
    uploads: Iterable[OpenUpload], daemon_of_pid: Mapping[int, int], pick: float
) -> tuple[int, list[OpenUpload]] | None:
    """The daemon to kill and its open uploads, or None when no live daemon has one (pure).

    Candidates are the live daemons (by pid) with an open upload, in daemon
    order; ``pick`` in [0, 1), drawn from the seed, chooses among them."""
    by_daemon: dict[int, list[OpenUpload]] = {}
    for upload in uploads:
        pid = pid_of(upload.worker_id)
        if pid is not None and pid in daemon_of_pid:
            by_daemon.setdefault(daemon_of_pid[pid], []).append(upload)
    if not by_daemon:
        return None
    candidates = sorted(by_daemon)
    daemon = candidates[min(int(pick * len(candidates)), len(candidates) - 1)]
    return daemon, by_daemon[daemon]


async def open_uploads(conn: asyncpg.Connection) -> list[OpenUpload]:
    rows = await conn.fetch(_OPEN_UPLOADS)
    return [OpenUpload(r["id"], r["worker_id"], r["upload_id"]) for r in rows]


async def still_open(
    conn: asyncpg.Connection, worker_id: str, uploads: list[OpenUpload]
) -> dict[str, uuid.UUID]:
    """Those of ``uploads`` still recorded on the dead worker's processing rows."""
    rows = await conn.fetch(_STILL_OPEN, worker_id, [u.upload_id for u in uploads])
    return {r["upload_id"]: r["id"] for r in rows}


class Watcher:
    """One connection to the queue, made again after Postgres restarts."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def connection(self) -> asyncpg.Connection | None:
        if self._conn is None or self._conn.is_closed():
            try:
                self._conn = await asyncpg.connect(self._dsn, timeout=3)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                return None
        return self._conn

    async def run(self, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T | None:
        """``query(conn)``, or None when the database does not answer."""
        conn = await self.connection()
        if conn is None:
            return None
        try:
            return await query(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            with contextlib.suppress(Exception):
                await conn.close()
            self._conn = None
            return None

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()


async def kill_mid_upload(
    fault: Fault,
    fleet: Fleet,
    dsn: str,
    kills: MidUploadKills,
    note: Callable[[str], None],
    wait: float = MID_UPLOAD_WAIT,
) -> None:
    """Wait for a live daemon with an open upload, SIGKILL the one the seed picks,
    record the uploads it left open, and start it again after ``fault.duration``."""
    watcher = Watcher(dsn)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            uploads = await watcher.run(open_uploads)
            # Daemons die and start meanwhile: ask the fleet each time.
            chosen = choose_victim(uploads or [], fleet.daemon_of_pid(), fault.pick)
            if chosen is not None:
                break
            await asyncio.sleep(0.1)
        else:
            kills.missed.append(f"{fault.describe()}: no daemon had an upload open for {wait:g}s")
            note(f"skipped (no upload open within {wait:g}s): {fault.describe()}")
            return
        daemon, held = chosen
        fleet.kill(daemon)
        # Dead, it changes nothing more; only the reaper could, once its lease
        # (renewed a moment ago) has run out.
        left = await watcher.run(lambda conn: still_open(conn, held[0].worker_id, held))
        if left is None:  # Postgres went away meanwhile: trust what was just read
            left = {u.upload_id: u.job_id for u in held}
        kills.landed.update(left)
        if not left:
            kills.missed.append(f"{fault.describe()}: daemon {daemon}'s uploads ended first")
        shown = ", ".join(f"job {j} upload {u[:16]}..." for u, j in left.items())
        note(f"SIGKILL daemon {daemon} mid-upload: {shown or 'its uploads had just ended'}")
    finally:
        await watcher.close()
    await asyncio.sleep(fault.duration)
    fleet.start(daemon)
    note(f"started daemon {daemon}")


# What the reaper or the sweep says of a dead worker's upload once it is dealt
# with: aborted, or found gone (the victim completed it in S3 just before the
# kill, and only its row's update was lost; S3 answers NoSuchUpload).
CLEANED_UP = ("orphan_upload_aborted", "orphan_upload_gone")


def cleaned_up_uploads(events: Iterable[Mapping[str, Any]]) -> set[str]:
    """Upload ids the reaper or the sweep aborted or found gone, from the daemons' logs."""
    return {
        str(e["upload_id"]) for e in events if e.get("event") in CLEANED_UP and e.get("upload_id")
    }


def aborts_by(events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many uploads the reaper (its events name the job) and the sweep aborted,
    and how many they found already gone."""
    counts = {"reaper": 0, "sweep": 0, "gone": 0}
    for e in events:
        if e.get("event") == "orphan_upload_aborted":
            counts["reaper" if "job_id" in e else "sweep"] += 1
        elif e.get("event") == "orphan_upload_gone":
            counts["gone"] += 1
    return counts


def mid_upload_problems(kills: MidUploadKills, cleaned_up: set[str]) -> list[str]:
    """At least one kill left an upload behind, and every such upload was aborted
    (or found already completed) by the reaper or the sweep."""
    if not kills.landed:
        why = "; ".join(kills.missed) or "no mid-upload kill was planned"
        return [f"no SIGKILL landed while its victim had an upload open ({why})"]
    return [
        f"upload {upload_id} of job {job_id}, left open by a SIGKILL, was never aborted"
        " (nor found already completed) by the reaper or the sweep"
        for upload_id, job_id in kills.landed.items()
        if upload_id not in cleaned_up
    ]
