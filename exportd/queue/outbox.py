"""The webhook outbox: the statements on ``exportd.webhook_deliveries`` and its attempts.

A trigger on ``exportd.jobs`` inserts a delivery in the transaction that
changes a job's state (migration ``0006_webhooks``); the daemons send them
(``exportd.webhooks``). Every statement here is short and holds no lock past
its own transaction: the HTTP request is made between the claim and the
outcome, with nothing locked, under the delivery's lease.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from exportd.queue.sql import queries

# Attempts of one delivery that GET /v1/jobs/{id} shows: the last ones. A
# delivery retried for a day makes a few dozen; all are kept until it is purged.
ATTEMPTS_SHOWN = 20
# Deliveries of one job that GET /v1/jobs/{id} shows: the last ones. Each
# terminal change records one, and a job may be retried (or an application
# may flip its state) any number of times: the answer stays bounded.
DELIVERIES_SHOWN = 50


@dataclass(frozen=True)
class Claimed:
    """One delivery claimed for one attempt."""

    id: uuid.UUID
    job_id: uuid.UUID
    event_type: str  # 'export.completed', ...
    occurred_at: datetime
    attempt: int  # this attempt's number, from 1
    retrying_seconds: float  # since the first attempt (0 for the first)


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to, to record."""

    state: str  # 'pending' (retry), 'delivered' or 'failed'
    retry_in_seconds: float  # for 'pending'
    status: int | None  # the HTTP status, None when no answer came
    error: str | None
    started_at: datetime
    latency_ms: int


@dataclass(frozen=True)
class OutboxFigures:
    """Pending deliveries and the age, in seconds, of the oldest one's event."""

    pending: int
    oldest_seconds: float


class Outbox:
    """The outbox's statements, on the pool given (the daemon gives it a small one)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._q = queries()

    async def claim(self, daemon_id: str, limit: int, lease_seconds: float) -> list[Claimed]:
        """Up to ``limit`` due deliveries, each leased to ``daemon_id`` for
        ``lease_seconds`` with one attempt spent; none of a job whose earlier
        delivery is still pending."""
        rows = await self._pool.fetch(
            self._q["webhook_claim"], limit, daemon_id, float(lease_seconds)
        )
        return [
            Claimed(
                r["id"],
                r["job_id"],
                r["event_type"],
                r["occurred_at"],
                r["attempts"],
                float(r["retrying_seconds"] or 0.0),
            )
            for r in rows
        ]

    async def jobs(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, asyncpg.Record]:
        """The whole rows of the jobs ``ids`` that still exist, by id."""
        rows = await self._pool.fetch(self._q["webhook_jobs"], list(ids))
        return {r["id"]: r for r in rows}

    async def no_target(self, claimed: Sequence[Claimed]) -> int:
        """Finish ``claimed`` as having no target; returns how many were."""
        if not claimed:
            return 0
        rows = await self._pool.fetch(
            self._q["webhook_no_target"], [c.id for c in claimed], [c.attempt for c in claimed]
        )
        return len(rows)

    async def record(self, claimed: Claimed, outcome: Outcome) -> bool:
        """Record ``outcome`` of ``claimed``'s attempt, with its attempt row; False
        when the attempt no longer holds the delivery (nothing is recorded)."""
        row = await self._pool.fetchrow(
            self._q["webhook_outcome"],
            claimed.id,
            claimed.attempt,
            outcome.state,
            float(outcome.retry_in_seconds),
            outcome.status,
            outcome.error,
            outcome.started_at,
            outcome.latency_ms,
        )
        return row is not None

    async def release(self, daemon_id: str, claimed: Sequence[Claimed]) -> None:
        """Hand back ``claimed`` deliveries that were not sent (shutdown): due at
        once, their attempt given back."""
        if claimed:
            await self._pool.execute(
                self._q["webhook_release"],
                daemon_id,
                [c.id for c in claimed],
                [c.attempt for c in claimed],
            )

    async def figures(self) -> OutboxFigures:
        """Pending deliveries and the oldest one's age, for /metrics."""
        row = await self._pool.fetchrow(self._q["webhook_stats"])
        assert row is not None  # an aggregate: one row, always
        return OutboxFigures(int(row["pending"]), float(row["oldest_seconds"]))


async def deliveries_of(
    pool: asyncpg.Pool,
    job_id: uuid.UUID,
    attempts_shown: int,
    deliveries_shown: int = DELIVERIES_SHOWN,
) -> list[dict[str, Any]]:
    """A job's last ``deliveries_shown`` deliveries, oldest first, as plain values: id, event_type,
    occurred_at, state, attempts, next_attempt_at, last_status, last_error,
    finished_at and attempt_log (its last ``attempts_shown`` attempts, each
    attempt, started_at, status, error, latency_ms)."""
    rows = await pool.fetch(
        queries()["webhook_deliveries_of"], job_id, attempts_shown, deliveries_shown
    )
    return [dict(r) for r in rows]
