"""The export as the worker sees it: a narrow Protocol.

The worker loop hands a ``Runner`` one job at a time (``JobContext``) and gets
back a ``PreparedExport``: its data written, its object not yet visible. The
worker then hands the object's commit to the queue, which makes it under the
job's row lock (``exportd.queue.completion``). The export engine
(``exportd.export.engine.Exporter``) is the runner of the daemon; unit tests
of the loop fake it here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from exportd.queue.job import ExportResult, Job, Progress, UploadRef


@dataclass
class JobContext:
    """What a runner gets for one job."""

    job: Job
    worker_id: str
    progress: Progress
    log: Any  # a structlog BoundLogger carrying the job's fields
    record_upload: Callable[[UploadRef], Awaitable[None]]


class PreparedExport(Protocol):
    """An export whose data is written and whose object only awaits its commit."""

    async def commit(self) -> ExportResult: ...

    async def abort(self) -> None: ...


class Runner(Protocol):
    async def run(self, ctx: JobContext) -> PreparedExport:
        """Produce the export. On any exception, cancellation included, the runner
        has already aborted whatever it uploaded."""
        ...
