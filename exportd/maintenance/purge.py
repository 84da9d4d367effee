"""The history purge: terminal rows leave the table after the history window.

The queue table is the hot path of every claim; rows of jobs long finished
only make it, its indexes and its vacuums bigger. ``completed`` rows are
never purged (their object exists): retention makes them ``expired`` first.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from exportd.sqlfiles import queries


class Purge:
    name = "purge"

    def __init__(
        self,
        pool: asyncpg.Pool,
        history_seconds: float,
        *,
        batch_size: int = 1000,
        logger: Any = None,
    ) -> None:
        self._pool = pool
        self._history = float(history_seconds)
        self.batch_size = batch_size
        self._q = queries()
        self.log = logger or structlog.get_logger()

    async def run_once(self) -> int:
        """Delete up to a batch of old terminal rows; returns how many."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(self._q["purge_lock"]):
                return 0
            rows = await conn.fetch(self._q["purge_delete"], self._history, self.batch_size)
        if rows:
            self.log.info("jobs_purged", count=len(rows))
        return len(rows)
