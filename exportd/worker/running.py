"""The worker's bookkeeping of one running job, and why it may be stopped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from exportd.queue.job import Job, Progress


class StopReason(StrEnum):
    SHUTDOWN = "shutdown"
    CANCELLED = "cancelled"
    LOST = "lost"


@dataclass
class RunningJob:
    """A job claimed by this worker, from its claim until its outcome is recorded."""

    job: Job
    progress: Progress
    renewal_sent: float  # monotonic time of the last renewal the database confirmed
    log: Any  # bound to the job's fields
    task: asyncio.Task[None] | None = None
    finishing: bool = False  # completing or recording its outcome: not to be stopped
    committed: bool = False  # its object is committed: only its row is left to record
    stop_reason: StopReason | None = None
    # When this worker claimed it (wall clock): a trace's claim wait ends here.
    claimed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
