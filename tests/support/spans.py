"""Spans read back from OpenTelemetry's SDK: an in-memory exporter behind the
daemon's own ``OtelTracer``, so that what is tested is what a collector gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from exportd.tracing.otel import OtelTracer, provider_with
from exportd.tracing.seam import NO_TRACER, install

# The caller's span, as a client would send it (W3C's own example ids).
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The process traced into memory for one test (no OTEL_* variable of the
    machine's turns the daemon's own tracing on meanwhile)."""
    for name in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    exporter = InMemorySpanExporter()
    provider = provider_with(SimpleSpanProcessor(exporter))
    previous = install(OtelTracer(provider))
    try:
        yield exporter
    finally:
        install(previous if previous is not NO_TRACER else NO_TRACER)
        provider.shutdown()


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    """(trace id, span id) of ``span`` in hex, as traceparent writes them."""
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def attrs(span: ReadableSpan) -> dict[str, Any]:
    """``span``'s attributes, as a plain dict."""
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> str | None:
    return None if span.parent is None else f"{span.parent.span_id:016x}"


def named(found: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in found if s.name == name]


def children(found: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    """The spans whose parent is ``parent``, in the order they started."""
    own = hex_ids(parent)[1]
    return sorted((s for s in found if parent_id(s) == own), key=lambda s: s.start_time or 0)


def descendants(found: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    out: list[ReadableSpan] = []
    for child in children(found, parent):
        out.extend([child, *descendants(found, child)])
    return out


def attribute_values(found: tuple[ReadableSpan, ...]) -> list[Any]:
    """Every attribute value and span name: what must never hold a caller's values."""
    return [s.name for s in found] + [v for s in found for v in (s.attributes or {}).values()]
