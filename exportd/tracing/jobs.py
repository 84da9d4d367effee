"""The spans of a job attempt, and what they say about the job.

An attempt is one span, ``export <kind>`` (kind CONSUMER), whose parent is the
caller's span when the job carries a valid ``trace_context`` (the request that
asked for it: its trace continues here, however long after), else none (a new
trace). It starts when the job became ready (its ``run_after``) with a child
``claim wait`` up to its claim; the worker opens ``stream`` (the queries and
the upload, with ``upload part`` children from exportd.s3) and ``complete``
(the object's commit and the row's update) inside it.

Attributes (``exportd.*``): the job's id, kind, format and attempt; rows, bytes
and the outcome once known; ``exportd.error_kind`` on failure. Never the
params' or options' values, nor error messages (they may quote values); the
owner only when ``EXPORTD_TRACE_OWNER=true`` (``OtelTracer.show_owner``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from exportd.queue.job import Job
from exportd.tracing.context import from_document, parse_traceparent
from exportd.tracing.seam import Attribute, Span, SpanKind, current_span, tracer


def job_attributes(job: Job, *, show_owner: bool) -> dict[str, Attribute]:
    """The attributes of ``job``'s attempt span, known at its claim."""
    found: dict[str, Attribute] = {
        "exportd.job.id": str(job.id),
        "exportd.job.kind": job.kind,
        "exportd.job.format": job.format,
        "exportd.job.attempt": job.attempt,
        "exportd.job.max_attempts": job.max_attempts,
    }
    if show_owner:
        found["exportd.job.owner"] = job.owner
    return found


def ready_time(job: Job, claimed_at: datetime) -> datetime:
    """When ``job``'s claim wait began: its ``run_after``, but not before it was created
    (a run_after in the past, or -infinity) nor after ``claimed_at`` (the database's
    clock set run_after; a claim read on a clock behind it must not end the wait
    before it began). asyncpg reads ±infinity as naive datetimes: then the claim."""
    ready, created = job.ready_at, job.created_at
    if ready is None or ready.tzinfo is None:
        return claimed_at
    if created.tzinfo is not None:
        ready = max(ready, created)
    return min(ready, claimed_at)


@contextmanager
def attempt_span(job: Job, claimed_at: datetime) -> Iterator[Span]:
    """The span of ``job``'s attempt claimed at ``claimed_at`` (UTC), current inside
    the block, its ``claim wait`` child already recorded."""
    current = tracer()
    if not current.enabled:
        with current.start("") as nothing:
            yield nothing
        return
    document = from_document(job.trace_context)
    parent = None if document is None else parse_traceparent(document["traceparent"])
    tracestate = None if document is None else document.get("tracestate")
    ready = ready_time(job, claimed_at)
    with current.start(
        f"export {job.kind}",
        kind=SpanKind.CONSUMER,
        remote_parent=parent,
        tracestate=tracestate,
        start_time=ready,
        attributes=job_attributes(job, show_owner=current.show_owner),
    ) as attempt:
        with current.start("claim wait", start_time=ready, end_time=claimed_at):
            pass
        yield attempt


def attempt_ended(outcome: str, *, rows: int | None = None, size_bytes: int | None = None) -> None:
    """Record on the current span (the attempt's) how it ended: ``outcome``
    (``completed``, ``retry``, ``failed``, ``released``, ``cancelled``, ``lost``), and
    the rows and bytes of a completed export."""
    found: dict[str, Attribute] = {"exportd.job.outcome": outcome}
    if rows is not None:
        found["exportd.job.rows"] = rows
    if size_bytes is not None:
        found["exportd.job.bytes"] = size_bytes
    current_span().set(found)


def attempt_failed(error_kind: str, outcome: str) -> None:
    """Mark the current span (the attempt's) failed with ``error_kind`` (an
    ``ErrorKind`` value, also its status description: an error message may quote
    values), and ``outcome`` (``retry`` or ``failed``)."""
    attempt_ended(outcome)
    current_span().fail(error_kind, error_kind)
