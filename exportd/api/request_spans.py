"""A server span for every API request, continuing the caller's trace.

The span is named and described by the route's template (``GET
/v1/jobs/{id}``), never by the raw path (which holds ids) nor the query string
(which may hold a token or an owner); its parent is the caller's span when the
request carries a valid ``traceparent`` header (``tracing.context``: a
malformed one is ignored, a huge one bounded before it is read). Outermost of
the middlewares, so the request's log lines carry its ``trace_id`` and
``span_id``. With tracing off, one attribute check per request.
"""

from __future__ import annotations

from aiohttp import web

from exportd.api.middleware import Handler, route_template
from exportd.tracing.context import TraceParent, bounded_tracestate, parse_traceparent
from exportd.tracing.seam import SpanKind, tracer

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# Any token is a method to aiohttp: others are named _OTHER, as OpenTelemetry's HTTP
# conventions say, so that no caller-chosen text names or describes a span.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


def caller_trace(request: web.Request) -> tuple[TraceParent | None, str | None]:
    """The caller's (TraceParent, tracestate) from ``request``'s headers; (None, None)
    when there is no single valid traceparent (W3C: two of them, or a malformed
    one, is none)."""
    given = request.headers.getall(TRACEPARENT, [])
    parent = parse_traceparent(given[0]) if len(given) == 1 else None
    if parent is None:
        return None, None
    # Several tracestate headers are one list, joined (W3C, section 3.3.1).
    return parent, bounded_tracestate(",".join(request.headers.getall(TRACESTATE, [])))


def trace_context_of(request: web.Request) -> dict[str, str] | None:
    """The ``trace_context`` a job enqueued by ``request`` keeps (``POST /v1/jobs``):
    the caller's span, so that the job's spans continue the caller's trace."""
    parent, tracestate = caller_trace(request)
    if parent is None:
        return None
    found = {"traceparent": parent.header}
    if tracestate is not None:
        found["tracestate"] = tracestate
    return found


@web.middleware
async def request_spans(request: web.Request, handler: Handler) -> web.StreamResponse:
    current = tracer()
    if not current.enabled:
        return await handler(request)
    route = route_template(request)
    parent, tracestate = caller_trace(request)
    method = request.method if request.method in _METHODS else "_OTHER"
    # A request no route matched has no route to name: the span is named by the
    # method alone and carries no http.route (OpenTelemetry's HTTP conventions).
    unmatched = route == "<unmatched>"
    name = method if unmatched else f"{method} {route}"
    attributes = {"http.request.method": method}
    if not unmatched:
        attributes["http.route"] = route
    with current.start(
        name,
        kind=SpanKind.SERVER,
        remote_parent=parent,
        tracestate=tracestate,
        attributes=attributes,
    ) as span:
        raised: web.HTTPException | None = None
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:  # aiohttp's way to answer: an answer, not an error
            raised, status = exc, exc.status
        span.set({"http.response.status_code": status})
        if status >= 500:
            span.fail(f"http_{status}", f"HTTP {status}")
    if raised is not None:
        raise raised
    return response
