"""Retention: a completed export whose download period is over is deleted.

Its object is deleted from the bucket and the row becomes ``expired``; the
``exportd_events`` trigger tells the application. The object goes first: a
row that says ``expired`` never points at an object that still exists, and a
round cut short (S3 down, the database lost at commit) only means the next
round deletes the same objects again, which S3 answers as a success. A row
that refuses its update (an application trigger that raises, say) never
fails the round: the others are expired, and it is logged and passed over.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from exportd.queue.postgres import PgJobStore
from exportd.queue.row_by_row import Passed
from exportd.queue.upkeep import RetentionRound

# key -> None once deleted; bounded by its own deadline
# (``exportd.s3.objects.delete_object``).
DeleteObject = Callable[[str], Awaitable[None]]


class Retention:
    name = "retention"

    def __init__(
        self,
        queue: PgJobStore,
        delete_object: DeleteObject,
        *,
        batch_size: int = 100,
        logger: Any = None,
    ) -> None:
        self._queue = queue
        self._delete = delete_object
        self.batch_size = batch_size
        self.log = logger or structlog.get_logger()
        self._refused = Passed()

    async def run_once(self) -> int:
        """Expire up to a batch of jobs; returns how many became ``expired``."""
        async with self._queue.upkeep_round(RetentionRound) as round_:
            if round_ is None:
                return 0
            rows = await round_.due(self.batch_size, self._refused.ids())
            deleted: list[uuid.UUID] = []
            for row in rows:
                if not await self._delete_object(row):
                    # Storage is failing: the rest waits for the next round
                    # rather than a timeout each.
                    break
                deleted.append(row["id"])
            if not deleted:
                return 0
            expired, refused = await round_.expire(deleted)
        for job_id, exc in refused:
            self._refused.add(job_id)
            self.log.error(
                "job_expiry_refused",
                job_id=str(job_id),
                error=f"{exc.__class__.__name__}: {exc}"[:500],
                passed_over=True,
            )
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
            await self._delete(key)
        except Exception as exc:
            self.log.warning(
                "retention_delete_failed", job_id=str(row["id"]), key=key, error=repr(exc)
            )
            return False
        return True
