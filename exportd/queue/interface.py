"""The queue as the worker sees it: a narrow Protocol.

The worker loop depends only on ``JobStore``; the Postgres implementation is
``exportd.queue.postgres.PgJobStore``. Unit tests of the loop fake the queue here,
at this boundary, while the SQL itself is tested against real Postgres.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from exportd.errors import ErrorKind
from exportd.queue.job import ExportResult, Heartbeat, Job, JobState, LetGo, UploadRef

Commit = Callable[[], Awaitable[ExportResult]]


class JobStore(Protocol):
    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Job]: ...

    async def heartbeat(
        self, worker_id: str, lease_seconds: float, beats: Sequence[Heartbeat]
    ) -> set[uuid.UUID]:
        """Renew leases; returns the ids still owned by ``worker_id``."""
        ...

    async def record_upload(self, job: Job, worker_id: str, ref: UploadRef) -> bool: ...

    async def complete(
        self,
        job: Job,
        worker_id: str,
        retention_seconds: float,
        lease_seconds: float,
        commit: Commit,
    ) -> ExportResult | None:
        """Call ``commit`` and mark the job completed, only while it is still owned.

        Returns None, without calling ``commit``, when the job was lost. When
        ``commit`` raises, the job is still owned, with a fresh lease.
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
