"""The tracing seam's Protocols (``tracing.seam``) implemented with OpenTelemetry.

Imported only when tracing is on (``tracing.setup``), so a daemon without the
``otel`` extra never imports OpenTelemetry. Spans go to a ``BatchSpanProcessor``:
ending one only appends it to a bounded queue (full: the span is dropped), and
a thread of the SDK exports them, so the event loop and the jobs never wait on
the collector. ``shutdown`` flushes from a thread of its own and returns by its
deadline whether the collector answered or not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from exportd.tracing.context import TraceParent
from exportd.tracing.seam import Attribute, Span, SpanKind, entered

_KINDS = {
    SpanKind.INTERNAL: trace.SpanKind.INTERNAL,
    SpanKind.SERVER: trace.SpanKind.SERVER,
    SpanKind.CONSUMER: trace.SpanKind.CONSUMER,
}
# The instrumentation scope every span of exportd names.
SCOPE = "exportd"


def _ns(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1_000_000_000)


class _OtelSpan:
    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, attributes: Mapping[str, Attribute]) -> None:
        self._span.set_attributes(dict(attributes))

    def fail(self, error_kind: str, description: str) -> None:
        self._span.set_attribute("exportd.error_kind", error_kind)
        self._span.set_status(Status(StatusCode.ERROR, description))


def _remote(parent: TraceParent, tracestate: str | None) -> otel_context.Context:
    """A context whose current span is the caller's (remote) one, and nothing else of
    this task's context: a job's span is a child of the request that asked for it."""
    state = TraceState.from_header([tracestate]) if tracestate else TraceState()
    remote = SpanContext(
        trace_id=int(parent.trace_id, 16),
        span_id=int(parent.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(parent.flags & TraceFlags.SAMPLED),
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(remote), otel_context.Context())


class OtelTracer:
    """``seam.Tracer`` over an SDK ``TracerProvider``. ``show_owner``: whether job
    spans carry the owner in clear (``EXPORTD_TRACE_OWNER``)."""

    enabled = True

    def __init__(self, provider: TracerProvider, *, show_owner: bool = False) -> None:
        self.provider = provider
        self.show_owner = show_owner
        self._tracer = provider.get_tracer(SCOPE)

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
        parent = None if remote_parent is None else _remote(remote_parent, tracestate)
        return self._open(name, _KINDS[kind], parent, start_time, end_time, attributes)

    @contextmanager
    def _open(
        self,
        name: str,
        kind: trace.SpanKind,
        parent: otel_context.Context | None,
        start_time: datetime | None,
        end_time: datetime | None,
        attributes: Mapping[str, Attribute] | None,
    ) -> Iterator[Span]:
        span = self._tracer.start_span(
            name,
            context=parent,
            kind=kind,
            attributes=dict(attributes or {}),
            start_time=_ns(start_time),
        )
        ids = span.get_span_context()
        opened = _OtelSpan(span)
        try:
            with (
                trace.use_span(span, record_exception=False, set_status_on_exception=False),
                entered(f"{ids.trace_id:032x}", f"{ids.span_id:016x}", opened),
            ):
                yield opened
        except BaseException as exc:
            # The exception's class only: a message may quote a caller's values.
            span.set_status(Status(StatusCode.ERROR, exc.__class__.__name__))
            raise
        finally:
            span.end(end_time=_ns(end_time))

    def shutdown(self, timeout_seconds: float) -> None:
        """Flush and stop within ``timeout_seconds``: the SDK's shutdown waits on the
        exporter, whose retries may outlast any deadline, so it runs in a daemon
        thread that is abandoned (never joined) past the deadline."""
        done = threading.Event()

        def flush_and_stop() -> None:
            try:
                self.provider.force_flush(int(timeout_seconds * 1000))
                self.provider.shutdown()
            finally:
                done.set()

        threading.Thread(target=flush_and_stop, name="exportd-trace-shutdown", daemon=True).start()
        done.wait(timeout_seconds)


def make_provider(exporter: str) -> TracerProvider:
    """A provider exporting to ``exporter`` (``otlp`` or ``console``; see
    ``tracing.config``) through a ``BatchSpanProcessor``. The resource (service
    name and attributes), OTLP endpoint, headers and timeout, sampler and batch
    sizes come from the ``OTEL_*`` variables, read by the SDK."""
    span_exporter: SpanExporter
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        span_exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter()
    return provider_with(BatchSpanProcessor(span_exporter))


def provider_with(processor: SpanProcessor) -> TracerProvider:
    """A provider for ``processor``, with the resource the ``OTEL_*`` variables name
    (``OTEL_SERVICE_NAME`` unset: ``exportd``)."""
    resource = Resource.create()
    # The SDK names a service nobody named "unknown_service:<program>".
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "exportd"}))
    # No exit hook of the SDK's: it would shut the provider down again in the main
    # thread, waiting up to 30 s more on a collector ``shutdown`` gave up on.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider
