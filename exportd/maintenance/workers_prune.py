"""The prune of daemons gone without a word: their rows leave ``exportd.workers``.

A daemon that stops cleanly deletes its own row; one that was killed, or lost
its host, leaves it behind. Such a row is already not alive (three heartbeats
missed, ``exportd.queue.workers``); this deletes it so the table holds the
daemons running and no history. Its jobs are the reaper's, not this task's.
"""

from __future__ import annotations

from typing import Any

import structlog

from exportd.queue.postgres import PgJobStore


class WorkersPrune:
    name = "workers_prune"
    # One statement deletes every stale row: a round never leaves any behind.
    batch_size = 1_000_000

    def __init__(self, queue: PgJobStore, *, logger: Any = None) -> None:
        self._queue = queue
        self.log = logger or structlog.get_logger()

    async def run_once(self) -> int:
        """Delete the rows of daemons no longer alive; returns how many."""
        done = await self._queue.prune_workers()
        if done:
            self.log.info("workers_pruned", count=done)
        return done
