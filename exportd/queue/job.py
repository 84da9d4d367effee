"""What a worker knows about a job it has claimed, and what it reports back."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from exportd.limits import (
    OPTIONS_MAX_BYTES,
    TRACE_CONTEXT_MAX_BYTES,
    JsonBoundsError,
    loads_bounded,
)

# Every state of a job, in the order of its life (docs/queue.md).
STATES = ("pending", "processing", "completed", "failed", "cancelled", "expired")


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    owner: str
    kind: str
    params: Any  # whatever the caller stored; validated before use
    format: str
    priority: int
    attempt: int  # this attempt's number, from 1 (reset by a retry on request)
    max_attempts: int
    created_at: datetime
    # This claim's number: counts every claim of the job and is never reset,
    # so it names the claim in every guarded write (sql/queries.sql).
    claim: int
    # Why the stored params could not be decoded (too deep, too big); the
    # worker then fails the job as invalid_params without running it.
    params_error: str | None = None
    # The job's options document as stored ({} when none); validated before use.
    options: Any = None
    # Why the stored options could not be decoded, as for params_error.
    options_error: str | None = None
    # The caller's W3C trace context as stored (exportd.jobs.trace_context), None for
    # none or undecodable; read by exportd.tracing, which ignores a malformed one.
    trace_context: Any = None
    # When the job became ready to claim (its run_after): a trace's claim wait starts here.
    ready_at: datetime | None = None

    @classmethod
    def from_record(cls, row: Any) -> Job:
        """A claimed row as a job. The claim returns params as JSON text
        (``params_text``); each job decodes its own, so a row that cannot be
        decoded becomes a job with ``params_error`` set rather than an error
        that loses every job of its claim. Options likewise (``options_text``,
        ``options_error``)."""
        params: Any = None
        error: str | None = None
        try:
            params = loads_bounded(row["params_text"], "params")
        except JsonBoundsError as exc:
            error = str(exc)
        options: Any = None
        options_error: str | None = None
        try:
            options = loads_bounded(row["options_text"], "options", max_bytes=OPTIONS_MAX_BYTES)
        except JsonBoundsError as exc:
            options_error = str(exc)
        trace_context: Any = None
        trace_text = row["trace_context_text"]
        with contextlib.suppress(JsonBoundsError):
            # Never a reason to fail the job: a trace context it cannot read is none.
            if trace_text is not None:
                trace_context = loads_bounded(
                    trace_text, "trace_context", max_bytes=TRACE_CONTEXT_MAX_BYTES
                )
        return cls(
            id=row["id"],
            owner=row["owner"],
            kind=row["kind"],
            params=params,
            format=row["format"],
            priority=row["priority"],
            attempt=row["attempts"],
            max_attempts=row["max_attempts"],
            created_at=row["created_at"],
            claim=row["claims"],
            params_error=error,
            options=options,
            options_error=options_error,
            trace_context=trace_context,
            ready_at=row["run_after"],
        )

    def log_fields(self, worker_id: str) -> dict[str, Any]:
        """The fields every log line about this job carries."""
        return {
            "job_id": str(self.id),
            "owner": self.owner,
            "kind": self.kind,
            "attempt": self.attempt,
            "worker_id": worker_id,
        }


@dataclass
class Progress:
    """Counters an export updates as it goes; the heartbeat records them."""

    rows: int = 0
    bytes: int = 0
    percent: int = 0
    files: int = 0  # stored objects bundled (files datasets); counted in percent, not rows

    def snapshot(self) -> tuple[int, int, int]:
        # Never report 100 before completion: 100 means "done".
        return self.rows, self.bytes, min(self.percent, 99)


@dataclass(frozen=True)
class ExportResult:
    object_key: str
    size_bytes: int
    row_count: int
    sha256_hex: str
    # The name a download is saved under, in full; the key's last segment
    # may be cut to fit S3's limits (export.keys). Empty: the key's.
    filename: str = ""


@dataclass(frozen=True)
class JobState:
    """Who holds a job: enough to tell "still mine" from "gone"."""

    state: str
    worker_id: str | None
    claims: int
    owner: str

    def held_by(self, worker_id: str, claim: int, owner: str) -> bool:
        """Still this claim's: processing, by this worker, under this claim number,
        for this owner (an owner changed by the application means the job is lost)."""
        return (self.state, self.worker_id, self.claims, self.owner) == (
            "processing",
            worker_id,
            claim,
            owner,
        )


class LetGo(StrEnum):
    """Where a job went when its worker let go of it after a failure or at shutdown:
    back to the queue, or failed, because the application lowered max_attempts
    to the attempts made while it ran."""

    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class Heartbeat:
    """One job's entry in a heartbeat."""

    job_id: uuid.UUID
    claim: int  # the claim's number (Job.claim)
    owner: str  # as claimed: a job whose owner was changed is not renewed
    rows: int
    bytes: int
    percent: int


@dataclass(frozen=True)
class UploadRef:
    upload_id: str
    key: str
