"""The purge of finished webhook deliveries, with the history retention.

Delivered, failed and target-less deliveries stay visible in
``GET /v1/jobs/{id}`` for ``EXPORTD_HISTORY_RETENTION`` after they finished,
then leave ``exportd.webhook_deliveries`` (their attempts with them). A
purged job takes its deliveries along (ON DELETE CASCADE); pending ones are
never purged here: they are still to be sent.
"""

from __future__ import annotations

from typing import Any

import structlog

from exportd.queue.postgres import PgJobStore
from exportd.queue.upkeep import WebhookPurgeRound


class WebhookPurge:
    name = "webhook_purge"

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

    async def run_once(self) -> int:
        """Delete up to a batch of finished deliveries past the history; returns how many."""
        async with self._queue.upkeep_round(WebhookPurgeRound) as round_:
            if round_ is None:
                return 0
            done = await round_.purge(self._history, self.batch_size)
        if done:
            self.log.info("webhook_deliveries_purged", count=done)
        return done
