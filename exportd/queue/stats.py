"""Queue figures for /metrics (jobs by state, the oldest pending job's wait, the
paused kinds), read from Postgres at scrape time, briefly cached.

Several Prometheus servers may scrape every few seconds; counting the table
for each scrape would cost more than the figures are worth. One query serves
every scrape within ``max_age``, concurrent scrapes wait for the same query,
and a database that does not answer within ``timeout`` leaves the figures
out (absent, so that an alert on them fires) rather than stalling the scrape.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from exportd.metrics import Metrics, QueueSnapshot
from exportd.queue.postgres import PgJobStore


class QueueStats:
    def __init__(
        self, queue: PgJobStore, metrics: Metrics, *, max_age: float = 5.0, timeout: float = 2.0
    ) -> None:
        self._queue = queue
        self._metrics = metrics
        self._max_age = max_age
        self._timeout = timeout
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._read_at is not None and time.monotonic() - self._read_at < self._max_age

    async def refresh(self) -> None:
        """Read the figures unless a recent read (successful or not) is fresh enough."""
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():
                return  # read by the scrape this one waited for
            try:
                snapshot, paused = await asyncio.wait_for(self._read(), self._timeout)
            except Exception as exc:
                self._metrics.error("database", "queue_stats")
                self._metrics.set_queue(None)
                self._metrics.set_paused(None)
                structlog.get_logger().warning("queue_stats_failed", error=repr(exc))
            else:
                self._metrics.set_queue(snapshot)
                self._metrics.set_paused(paused)
            self._read_at = time.monotonic()

    async def _read(self) -> tuple[QueueSnapshot, list[str]]:
        """The queue's figures and the kinds paused now (a handful of rows)."""
        snapshot = await self._queue.snapshot()
        return snapshot, [p.kind for p in await self._queue.paused_kinds()]
