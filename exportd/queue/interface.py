"""The queue as the worker sees it: a narrow Protocol.

The worker loop depends only on ``JobStore``; the Postgres implementation is
``exportd.queue.postgres.PgJobStore``. Unit tests of the loop fake the queue here,
at this boundary, while the SQL itself is tested against real Postgres.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

from exportd.errors import ErrorKind
from exportd.queue.job import ExportResult, Heartbeat, Job, JobState, LetGo, UploadRef
from exportd.quotas import Quota

# The object's commit, handed over to be made under the job's row lock.
Commit = Callable[[], Awaitable[ExportResult]]


class Completing:
    """A completion handed over to the store: its two answers, in this order.

    ``committed`` is True once the job's object is committed and only its row
    is left to record; False when it will not be (the job was lost, its
    commit failed, or the batch failed before it). ``outcome`` comes once the
    completing transaction has ended: the ``ExportResult`` recorded; None
    when the job was lost, its object not committed; or the error (when the
    commit raised, the job is still owned, with a fresh lease).

    Only the store answers; a caller that stops waiting cancels ``outcome``
    (``give_up``), and the store then drops that answer.
    """

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.committed: asyncio.Future[bool] = loop.create_future()
        self.outcome: asyncio.Future[ExportResult | None] = loop.create_future()

    def object_committed(self) -> None:
        """The object is committed: only the row is left (the first answer)."""
        if not self.committed.done():
            self.committed.set_result(True)

    def settle(self, outcome: ExportResult | BaseException | None) -> None:
        """The transaction has ended: answer both (an exception is the error)."""
        if not self.committed.done():
            self.committed.set_result(False)
        if self.outcome.done():
            return
        if isinstance(outcome, BaseException):
            self.outcome.set_exception(outcome)
        else:
            self.outcome.set_result(outcome)

    def give_up(self) -> None:
        """Nobody waits for the answers any more: drop them, whatever comes."""
        self.committed.cancel()
        self.outcome.cancel()


class JobStore(Protocol):
    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Job]: ...

    async def heartbeat(
        self, worker_id: str, lease_seconds: float, beats: Sequence[Heartbeat]
    ) -> set[uuid.UUID]:
        """Renew leases; returns the ids still owned by ``worker_id``."""
        ...

    async def record_upload(self, job: Job, worker_id: str, ref: UploadRef) -> bool: ...

    def begin_completion(
        self,
        job: Job,
        worker_id: str,
        retention_seconds: float,
        lease_seconds: float,
        commit: Commit,
    ) -> Completing:
        """Hand the job over to be completed: ``commit`` is called, and the job
        marked completed (kept ``retention_seconds``), only while it is still
        owned; returns at once, with the answers to come (``Completing``).

        ``commit`` is not called when the job was lost. When it raises, the
        job is still owned, with a fresh lease of ``lease_seconds``.
        """
        ...

    async def retry(
        self, job: Job, worker_id: str, delay_seconds: float, error: str, kind: ErrorKind
    ) -> LetGo | None:
        """Back to pending after ``delay_seconds``, or failed when max_attempts was
        lowered meanwhile; None when the job was no longer this worker's."""
        ...

    async def fail(self, job: Job, worker_id: str, error: str, kind: ErrorKind) -> bool: ...

    async def release(self, job: Job, worker_id: str) -> LetGo | None:
        """Back to pending with the attempt given back, or failed when max_attempts
        was lowered meanwhile; None when the job was no longer this worker's."""
        ...

    async def state_of(self, job_id: uuid.UUID) -> JobState | None:
        """Who holds the job now, or None when there is no such job."""
        ...

    async def quota_retry_at(self, job: Job, quota: Quota) -> datetime | None:
        """None when ``job`` is within its kind's ``quota``; else when it can be
        asked for again (UTC). Counts the jobs of its owner and kind created
        within ``quota.per`` before it, by ``(created_at, id)``, except those
        refused for quota themselves (``exportd.quotas``)."""
        ...
