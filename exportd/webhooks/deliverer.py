"""The daemon's webhook task: claim due deliveries, send them, record how each went.

Any number of daemons run it. A claim leases each delivery to this daemon
for ``lease_seconds`` (longer than a request may take) and spends an
attempt; the request is made with no row locked and no transaction open;
the outcome is recorded by a statement guarded by the delivery and its
attempt. A daemon that dies mid-request leaves the lease to run out, and
another daemon (or this one, restarted) sends the event again: at least
once, deduplicated by the receiver on ``webhook-id``.

Up to ``concurrency`` requests are in flight at once, each a task of its
own: a receiver that never answers holds one slot for the request's
deadline, and neither other deliveries nor the worker's jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
import asyncpg
import structlog

from exportd.database import is_unavailable
from exportd.definitions.kinds import Kind
from exportd.definitions.webhook_url import shown
from exportd.queue.outbox import Claimed, OutboxFigures, Outcome
from exportd.webhooks import policy
from exportd.webhooks.metrics import WebhookMetrics
from exportd.webhooks.payload import event_body
from exportd.webhooks.policy import Answer
from exportd.webhooks.sender import Sent, post
from exportd.webhooks.signing import message_id
from exportd.webhooks.targets import target_of

# How often the pending figures of /metrics are read again.
_FIGURES_EVERY = 5.0
# Events claimed at once when no URL is configured anywhere (none is sent).
_NO_TARGET_BATCH = 500
# At shutdown, how long handing back unsent deliveries may take.
_RELEASE_SECONDS = 2.0


def is_outage(exc: BaseException) -> bool:
    """Whether a failed outbox statement says the database is out of reach for
    now (retry the round) rather than that a row cannot be read (that row's
    delivery fails alone)."""
    return is_unavailable(exc) or isinstance(exc, TimeoutError | OSError | asyncpg.InterfaceError)


def _recorded_as(decision: policy.Decision) -> tuple[str, float, str, str | None]:
    """The delivery's next state, the retry's delay, the metric's outcome and the error."""
    if isinstance(decision, policy.Delivered):
        return "delivered", 0.0, "delivered", None
    if isinstance(decision, policy.RetryLater):
        return "pending", decision.delay_seconds, "retrying", decision.reason
    return "failed", 0.0, "failed", decision.reason


class OutboxStore(Protocol):
    """The outbox's statements the deliverer uses (``exportd.queue.outbox.Outbox``)."""

    async def claim(self, daemon_id: str, limit: int, lease_seconds: float) -> list[Claimed]: ...

    async def jobs(self, ids: Sequence[uuid.UUID]) -> Mapping[uuid.UUID, Any]: ...

    async def no_target(self, claimed: Sequence[Claimed]) -> int: ...

    async def record(self, claimed: Claimed, outcome: Outcome) -> bool: ...

    async def release(self, daemon_id: str, claimed: Sequence[Claimed]) -> None: ...

    async def figures(self) -> OutboxFigures: ...


@dataclass(frozen=True)
class DelivererConfig:
    default_url: str | None
    keys: list[bytes]
    timeout_seconds: float = 10.0
    concurrency: int = 8
    poll_interval: float = 2.0
    retry: policy.RetryPolicy = field(default_factory=policy.RetryPolicy)

    @property
    def lease_seconds(self) -> float:
        """A claimed delivery's lease: the request's deadline twice over, and time
        to build the body and record the outcome."""
        return 2.0 * self.timeout_seconds + 5.0


class Deliverer:
    def __init__(
        self,
        outbox: OutboxStore,
        kinds: Mapping[str, Kind],
        config: DelivererConfig,
        document: Callable[[Any], dict[str, Any]],
        daemon_id: str,
        *,
        metrics: WebhookMetrics | None = None,
        logger: Any = None,
    ) -> None:
        """``document(row)``: the job's row as callers see it (``api.views.job_document``)."""
        self._outbox = outbox
        self._kinds = kinds
        self._config = config
        self._document = document
        self._daemon_id = daemon_id
        self._metrics = metrics
        self.log = logger or structlog.get_logger()
        self._wake = asyncio.Event()
        self._in_flight: dict[asyncio.Task[None], Claimed] = {}
        self._figures_at = 0.0

    def wake(self) -> None:
        """A job event may have been recorded (a notification arrived)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; then stop the requests in flight and hand back
        their deliveries. Never raises but CancelledError."""
        connector = aiohttp.TCPConnector(limit=self._config.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                while True:
                    if not await self._round(session):
                        await self._wait()
            finally:
                await self._stop()

    async def _wait(self) -> None:
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait())}
        # A slot freed is a reason to claim again, but only with slots free.
        waiters.update(self._in_flight)
        try:
            await asyncio.wait(
                waiters, timeout=self._config.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                if waiter not in self._in_flight:
                    waiter.cancel()
        self._wake.clear()

    async def _round(self, session: aiohttp.ClientSession) -> bool:
        """Claim into the free slots and start their requests; True when the
        claim was full (more may be due: claim again without waiting)."""
        await self._refresh_figures()
        free = self._config.concurrency - len(self._in_flight)
        if free <= 0:
            return False
        sends = self._config.default_url is not None or any(
            k.webhook_url for k in self._kinds.values()
        )
        if not sends:
            # Nothing is ever sent: every event only needs marking, in big batches,
            # and no job's row needs reading.
            free = _NO_TARGET_BATCH
        try:
            claimed = await self._outbox.claim(self._daemon_id, free, self._config.lease_seconds)
        except Exception as exc:
            # An outage: the next round tries again.
            self.log.warning("webhook_claim_failed", error=repr(exc)[:500])
            return False
        read = await self._jobs_of(claimed) if sends else ({}, {})
        if read is None:
            return False  # an outage: the claimed rows' leases run out
        jobs, unreadable = read
        targets = {
            c.id: target_of(jobs[c.job_id]["kind"], self._kinds, self._config.default_url)
            if c.job_id in jobs
            else None
            for c in claimed
        }
        untargeted = [c for c in claimed if targets[c.id] is None and c.job_id not in unreadable]
        if untargeted:
            try:
                done = await self._outbox.no_target(untargeted)
            except Exception as exc:
                self.log.warning("webhook_no_target_failed", error=repr(exc)[:500])
            else:
                if self._metrics is not None and done:
                    self._metrics.deliveries.labels("no_target").inc(done)
        for c in claimed:
            url = targets[c.id]
            problem = unreadable.get(c.job_id)
            if url is None and problem is None:
                continue
            task = asyncio.create_task(
                self._deliver(session, c, jobs.get(c.job_id), url or "", problem),
                name=f"exportd-webhook-{c.id}",
            )
            self._in_flight[task] = c
            task.add_done_callback(self._finished)
        return len(claimed) == free

    async def _jobs_of(
        self, claimed: Sequence[Claimed]
    ) -> tuple[Mapping[uuid.UUID, Any], dict[uuid.UUID, str]] | None:
        """The rows of the claimed deliveries' jobs by id, and why each job whose
        row cannot be read even alone cannot (its delivery fails alone: one row
        Python cannot decode must not hold up the batch it was claimed with,
        at every lease, for ever); None on an outage (logged)."""
        ids = list(dict.fromkeys(c.job_id for c in claimed))
        if not ids:
            return {}, {}
        try:
            return await self._outbox.jobs(ids), {}
        except Exception as exc:
            if is_outage(exc):
                self.log.warning("webhook_claim_failed", error=repr(exc)[:500])
                return None
        found: dict[uuid.UUID, Any] = {}
        unreadable: dict[uuid.UUID, str] = {}
        for job_id in ids:
            try:
                found.update(await self._outbox.jobs([job_id]))
            except Exception as exc:
                if is_outage(exc):
                    self.log.warning("webhook_claim_failed", error=repr(exc)[:500])
                    return None
                unreadable[job_id] = f"cannot read the job's row: {exc!r}"[:500]
        return found, unreadable

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("webhook_delivery_crashed", error=repr(task.exception())[:500])

    async def _deliver(
        self,
        session: aiohttp.ClientSession,
        claimed: Claimed,
        job: Any,
        url: str,
        unreadable: str | None = None,
    ) -> None:
        """Send ``claimed``'s event of ``job`` (its row) to ``url`` and record how it
        went; with ``unreadable`` (why the row cannot be read), fail it at once."""
        msg_id = message_id(claimed.id.hex)
        started_at = datetime.now(UTC)
        try:
            if unreadable is not None:
                raise ValueError(unreadable)
            body = event_body(claimed.event_type, claimed.occurred_at, self._document(job))
        except Exception as exc:
            # One row that cannot be turned into a body fails alone, recorded,
            # rather than crashing its task at every lease until the end of time.
            reason = unreadable or f"cannot build the body: {exc!r}"[:500]
            sent = Sent(Answer(None, reason), 0)
            decision: policy.Decision = policy.GiveUp(sent.answer.error or "")
        else:
            sent = await post(
                session, url, self._config.keys, msg_id, body, deadline=self._config.timeout_seconds
            )
            try:
                decision = policy.decide(
                    sent.answer,
                    claimed.attempt,
                    claimed.retrying_seconds,
                    self._config.retry,
                    datetime.now(UTC),
                )
            except Exception as exc:
                # Whatever the receiver answered, the attempt is recorded: as
                # one that got no usable answer (retried within the period),
                # never a crashed task whose lease runs out at every attempt.
                sent = Sent(Answer(None, f"unusable answer: {exc!r}"[:500]), sent.latency_ms)
                decision = policy.decide(
                    sent.answer,
                    claimed.attempt,
                    claimed.retrying_seconds,
                    self._config.retry,
                    datetime.now(UTC),
                )
        state, delay, label, error = _recorded_as(decision)
        outcome = Outcome(state, delay, sent.answer.status, error, started_at, sent.latency_ms)
        try:
            recorded = await self._outbox.record(claimed, outcome)
        except Exception as exc:
            # Not recorded: the lease runs out and the event is sent again.
            self.log.warning("webhook_record_failed", webhook_id=msg_id, error=repr(exc)[:500])
            return
        if self._metrics is not None:
            self._metrics.latency.inc(sent.latency_ms / 1000.0)
            if recorded:
                self._metrics.outcome(label)
        say = self.log.info if state == "delivered" else self.log.warning
        say(
            "webhook_delivered" if state == "delivered" else "webhook_attempt_failed",
            webhook_id=msg_id,
            job_id=str(claimed.job_id),
            type=claimed.event_type,
            target=shown(url) if url else None,
            attempt=claimed.attempt,
            status=sent.answer.status,
            latency_ms=sent.latency_ms,
            outcome=label,
            error=error,
            retry_in=round(delay, 1) if state == "pending" else None,
            recorded=recorded,
        )

    async def _refresh_figures(self) -> None:
        if self._metrics is None or time.monotonic() - self._figures_at < _FIGURES_EVERY:
            return
        self._figures_at = time.monotonic()
        try:
            figures = await self._outbox.figures()
        except Exception as exc:
            self.log.warning("webhook_figures_failed", error=repr(exc)[:500])
            return
        self._metrics.pending.set(figures.pending)
        self._metrics.oldest_pending_seconds.set(figures.oldest_seconds)

    async def _stop(self) -> None:
        """Cancel the requests in flight and hand their deliveries back at once
        (their lease would otherwise hold them), within a bound."""
        unsent = list(self._in_flight.values())
        for task in list(self._in_flight):
            task.cancel()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=_RELEASE_SECONDS)
        if unsent:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._outbox.release(self._daemon_id, unsent), _RELEASE_SECONDS
                )
