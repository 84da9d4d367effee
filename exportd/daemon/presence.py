"""The daemon's row in ``exportd.workers``: announced at start, refreshed on a
heartbeat, retired at a clean stop (``exportd.queue.workers``).

A loop of its own rather than a chore of maintenance: a maintenance round may
wait on S3 for longer than three heartbeats, and a daemon busy cleaning up
must not look dead. The row says the daemon's worker loop lives: while that
loop is not alive, no heartbeat is sent, and the row stops being alive once
three are missed. Every write has a deadline; a failed one is logged and the
next beat tries again.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

import structlog

import exportd
from exportd.queue.workers import WorkerIdentity

# Seconds between heartbeats of a daemon's row; a row is alive while its last
# heartbeat is within three of them (exportd.queue.workers.STALE_BEATS).
HEARTBEAT_SECONDS = 10.0


class _Alive(Protocol):
    @property
    def alive(self) -> bool: ...


class Registry(Protocol):
    async def announce_worker(self, identity: WorkerIdentity) -> None: ...

    async def retire_worker(self, worker_id: str) -> bool: ...


def identity_of(
    worker_id: str, concurrency: int, heartbeat_seconds: float = HEARTBEAT_SECONDS
) -> WorkerIdentity:
    """This process's identity: its host name, pid and exportd's version, started now."""
    return WorkerIdentity(
        worker_id=worker_id,
        version=exportd.__version__,
        host=socket.gethostname() or "unknown",
        pid=os.getpid(),
        started_at=datetime.now(UTC),
        concurrency=concurrency,
        heartbeat_seconds=heartbeat_seconds,
    )


async def keep_presence(
    registry: Registry, identity: WorkerIdentity, alive: Callable[[], bool]
) -> None:
    """Announce ``identity`` now, then every ``identity.heartbeat_seconds`` while
    ``alive()``; runs until cancelled, never raises otherwise. Each write may
    take one interval at most."""
    log = structlog.get_logger().bind(worker_id=identity.worker_id)
    interval = identity.heartbeat_seconds
    while True:
        if alive():
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a
                # cancellation that arrives as the write completes, and this loop
                # would then outlive the daemon's shutdown.
                async with asyncio.timeout(interval):
                    await registry.announce_worker(identity)
            except Exception as exc:
                log.warning("worker_heartbeat_failed", error=repr(exc))
        await asyncio.sleep(interval)


def start(
    registry: Registry, worker_id: str, concurrency: int, worker: _Alive
) -> asyncio.Task[None]:
    """The daemon's presence, kept by a task of its own while ``worker`` is alive."""
    identity = identity_of(worker_id, concurrency)
    return asyncio.create_task(
        keep_presence(registry, identity, lambda: worker.alive), name="exportd-presence"
    )


async def retire(registry: Registry, worker_id: str, deadline_seconds: float) -> None:
    """Delete the daemon's row within ``deadline_seconds``; a failure is logged
    (the row then stops being alive on its own, and maintenance prunes it)."""
    try:
        async with asyncio.timeout(deadline_seconds):
            await registry.retire_worker(worker_id)
    except Exception as exc:
        structlog.get_logger().warning("worker_retire_failed", worker_id=worker_id, error=repr(exc))
