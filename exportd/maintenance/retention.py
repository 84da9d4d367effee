"""Retention: a completed export whose download period is over is deleted.

Its object is deleted from the bucket and the row becomes ``expired``; the
``exportd_events`` trigger tells the application. The object goes first: a
row that says ``expired`` never points at an object that still exists, and a
round cut short (S3 down, the database lost at commit) only means the next
round deletes the same objects again, which S3 answers as a success.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from exportd.sqlfiles import queries

DeleteObject = Callable[[str], Awaitable[None]]

_DELETE_TIMEOUT = 30.0


class Retention:
    name = "retention"

    def __init__(
        self,
        pool: asyncpg.Pool,
        delete_object: DeleteObject,
        *,
        batch_size: int = 100,
        logger: Any = None,
    ) -> None:
        self._pool = pool
        self._delete = delete_object
        self.batch_size = batch_size
        self._q = queries()
        self.log = logger or structlog.get_logger()

    async def run_once(self) -> int:
        """Expire up to a batch of jobs; returns how many became ``expired``."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(self._q["retention_lock"]):
                return 0
            rows = await conn.fetch(self._q["retention_select"], self.batch_size)
            deleted: list[uuid.UUID] = []
            for row in rows:
                if not await self._delete_object(row):
                    # Storage is failing: the rest waits for the next round
                    # rather than a timeout each.
                    break
                deleted.append(row["id"])
            if not deleted:
                return 0
            expired = {r["id"] for r in await conn.fetch(self._q["retention_expire"], deleted)}
        for row in rows:
            if row["id"] in expired:
                self.log.info(
                    "job_expired", job_id=str(row["id"]), owner=row["owner"], kind=row["kind"]
                )
        return len(expired)

    async def _delete_object(self, row: Any) -> bool:
        key = row["object_key"]
        if key is None:
            return True
        try:
            async with asyncio.timeout(_DELETE_TIMEOUT):
                await self._delete(key)
        except Exception as exc:
            self.log.warning(
                "retention_delete_failed", job_id=str(row["id"]), key=key, error=repr(exc)
            )
            return False
        return True
