"""The tracing seam: what the worker, the export and the API call, whether or not
OpenTelemetry is installed.

One ``Tracer`` is installed per process (``install``; none: ``NO_TRACER``, whose
spans do nothing). Code deep in a job's path (an S3 part upload) opens a child of
whatever span is current with :func:`span`, without a tracer handed down to it:
the current span travels in a context variable, so the tasks a job creates
inherit it. The ids of the current span are kept in a context variable of this
module too (``current_ids``), so the log processor (``tracing.logs``) reads them
without importing OpenTelemetry.

Without the ``otel`` extra nothing here imports it; ``exportd.tracing.otel``
implements the Protocols with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from exportd.tracing.context import TraceParent

# What a span's attribute may hold (OpenTelemetry's primitive attribute values).
Attribute = str | int | float | bool


class SpanKind(StrEnum):
    INTERNAL = "internal"
    SERVER = "server"  # an API request
    CONSUMER = "consumer"  # a job attempt: work a producer (the caller) queued


class Span(Protocol):
    """One span, open."""

    def set(self, attributes: Mapping[str, Attribute]) -> None:
        """Add or replace attributes."""
        ...

    def fail(self, error_kind: str, description: str) -> None:
        """Mark the span failed, with ``exportd.error_kind`` (an ``ErrorKind`` value) and
        a status description (bounded by the caller; never params values)."""
        ...


class Tracer(Protocol):
    """Makes spans; the process has one (``install``)."""

    @property
    def enabled(self) -> bool: ...

    @property
    def show_owner(self) -> bool:
        """Whether job spans carry the owner in clear (``EXPORTD_TRACE_OWNER``)."""
        ...

    def start(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        remote_parent: TraceParent | None = None,
        tracestate: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ) -> AbstractContextManager[Span]:
        """A span, current inside the block, ended when it exits (an exception
        escaping it marks it failed). ``remote_parent``: the caller's span, its
        parent (else the current span is). ``start_time``/``end_time``: for a span
        of a wait that already happened (UTC-aware datetimes); the end is taken
        on exit when None."""
        ...

    def shutdown(self, timeout_seconds: float) -> None:
        """Flush what is buffered and stop, within ``timeout_seconds`` (blocking:
        call it from a thread)."""
        ...


class _NoSpan:
    def set(self, attributes: Mapping[str, Attribute]) -> None:
        pass

    def fail(self, error_kind: str, description: str) -> None:
        pass


_NO_SPAN = _NoSpan()


class _NoContext:
    """A reusable context manager yielding the no-op span: no allocation per span."""

    def __enter__(self) -> Span:
        return _NO_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


_NO_CONTEXT = _NoContext()


class NoTracer:
    """Tracing off: every span is the same no-op."""

    enabled = False
    show_owner = False

    def start(
        self,
        name: str,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
        remote_parent: TraceParent | None = None,
        tracestate: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        attributes: Mapping[str, Attribute] | None = None,
    ) -> AbstractContextManager[Span]:
        return _NO_CONTEXT

    def shutdown(self, timeout_seconds: float) -> None:
        pass


NO_TRACER: Tracer = NoTracer()
_tracer: Tracer = NO_TRACER

# (trace id, span id) of the current span, 32 and 16 hex digits; None outside one.
current_ids: ContextVar[tuple[str, str] | None] = ContextVar("exportd_trace_ids", default=None)
_current_span: ContextVar[Span] = ContextVar("exportd_span", default=_NO_SPAN)


def install(tracer: Tracer) -> Tracer:
    """Make ``tracer`` the process's; returns the one it replaces."""
    global _tracer
    previous, _tracer = _tracer, tracer
    return previous


def tracer() -> Tracer:
    """The process's tracer (``NO_TRACER`` unless one was installed)."""
    return _tracer


def span(
    name: str, attributes: Mapping[str, Attribute] | None = None
) -> AbstractContextManager[Span]:
    """A child of the current span; with tracing off, or outside any span (work of no
    job or request), a no-op that allocates nothing."""
    if not _tracer.enabled or current_ids.get() is None:
        return _NO_CONTEXT
    return _tracer.start(name, attributes=attributes)


T = TypeVar("T")


async def traced_part(number: int, size_bytes: int, upload: Awaitable[T]) -> T:
    """Await ``upload``, one part of an object (exportd.s3.upload), in an ``upload part``
    span (``exportd.part.number``, from 1; ``exportd.part.bytes``) when traced."""
    attributes: dict[str, Attribute] = {
        "exportd.part.number": number,
        "exportd.part.bytes": size_bytes,
    }
    with span("upload part", attributes):
        return await upload


def current_span() -> Span:
    """The span current here, to annotate (a no-op one outside any span)."""
    return _current_span.get()


@contextmanager
def entered(trace_id: str, span_id: str, opened: Span) -> Iterator[None]:
    """Make ``opened`` (whose ids are ``trace_id``, ``span_id``) current inside the
    block, for ``current_span`` and the log processor. For ``Tracer`` implementations."""
    ids = current_ids.set((trace_id, span_id))
    current = _current_span.set(opened)
    try:
        yield
    finally:
        _current_span.reset(current)
        current_ids.reset(ids)
