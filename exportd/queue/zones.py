"""The time zone names Postgres knows (``pg_timezone_names``), read once per process:
a new job's ``options.timezone`` must be one (``POST /v1/jobs``, schedules). Listing
them scans the zone database (tens of milliseconds), and it changes with a Postgres
upgrade, not while one runs."""

from __future__ import annotations

import asyncio

import asyncpg

from exportd.queue.sql import queries


class ZoneNames:
    """The zone names of the database behind ``pool``, read at the first call and kept."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._names: frozenset[str] | None = None
        self._lock = asyncio.Lock()

    async def names(self) -> frozenset[str]:
        if self._names is None:
            async with self._lock:
                if self._names is None:
                    rows = await self._pool.fetch(queries()["timezone_names"])
                    self._names = frozenset(r["name"] for r in rows)
        return self._names
