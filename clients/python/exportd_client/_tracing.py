"""The W3C trace context of the caller's current span, when OpenTelemetry is there.

``opentelemetry-api`` is optional (the ``otel`` extra): without it, or outside
any span, nothing is added to a request or a job, and the client behaves as if
tracing did not exist. With it, the globally configured propagator writes the
headers (``opentelemetry.propagate.inject``), so an application that set its
own propagators gets what it configured; only the W3C ``traceparent`` and
``tracestate`` are kept, and only in the shapes the daemon stores
(``exportd.jobs.trace_context``: a version-00 traceparent, a tracestate of at
most 512 bytes; a longer tracestate is dropped, the traceparent kept).
"""

from __future__ import annotations

import re

TRACESTATE_MAX_BYTES = 512
_TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def trace_headers() -> dict[str, str]:
    """``{"traceparent": ..., "tracestate": ...}`` of the current span (tracestate
    only when it has one); ``{}`` without OpenTelemetry or outside a valid span."""
    try:
        from opentelemetry import propagate
    except ImportError:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    parent = carrier.get("traceparent", "")
    if not _TRACEPARENT.fullmatch(parent):
        return {}
    found = {"traceparent": parent}
    state = carrier.get("tracestate", "")
    if state and len(state.encode("utf-8")) <= TRACESTATE_MAX_BYTES and state.isprintable():
        found["tracestate"] = state
    return found


def trace_context() -> dict[str, str] | None:
    """What a job row's ``trace_context`` holds for the current span, or None when
    there is none (then the SQL helpers leave the column out altogether)."""
    return trace_headers() or None
