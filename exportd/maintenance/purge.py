"""The history purge: terminal rows leave the table after the history window.

The queue table is the hot path of every claim; rows of jobs long finished
only make it, its indexes and its vacuums bigger. ``completed`` rows are
never purged (their object exists): retention makes them ``expired`` first.
A job's history of attempts (``exportd.job_attempts``) goes with it, by its
foreign key's ``ON DELETE CASCADE``, in the same statement.
A row whose delete is refused (an application trigger, a foreign key) never
fails the round: the others go, and it is logged and passed over.
"""

from __future__ import annotations

from typing import Any

import structlog

from exportd.queue.postgres import PgJobStore
from exportd.queue.row_by_row import Passed
from exportd.queue.upkeep import PurgeRound


class Purge:
    name = "purge"

    def __init__(
        self,
        queue: PgJobStore,
        history_seconds: float,
        *,
        batch_size: int = 1000,
        logger: Any = None,
    ) -> None:
        self._queue = queue
        self._history = float(history_seconds)
        self.batch_size = batch_size
        self.log = logger or structlog.get_logger()
        self._refused = Passed()

    async def run_once(self) -> int:
        """Delete up to a batch of old terminal rows; returns how many."""
        async with self._queue.upkeep_round(PurgeRound) as round_:
            if round_ is None:
                return 0
            ids = await round_.old(self._history, self.batch_size, self._refused.ids())
            rows, refused = await round_.delete(ids)
        for job_id, exc in refused:
            self._refused.add(job_id)
            self.log.error(
                "job_purge_refused",
                job_id=str(job_id),
                error=f"{exc.__class__.__name__}: {exc}"[:500],
                passed_over=True,
            )
        if rows:
            self.log.info("jobs_purged", count=len(rows))
        return len(rows)
