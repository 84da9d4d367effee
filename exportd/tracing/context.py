"""W3C Trace Context (https://www.w3.org/TR/trace-context/) as a job carries it: pure.

A job's ``trace_context`` (exportd.jobs, migration 0012) is
``{"traceparent": "00-<32 hex>-<16 hex>-<2 hex>", "tracestate": "..."}``. It
comes from a caller (the client library, or ``POST /v1/jobs``'s headers) and is
never trusted: a malformed traceparent is ignored, as W3C asks of a receiver
("Trace Context", section 3.2.2: a vendor that cannot parse it MUST NOT use
it), so it never fails a job or a request; the job then starts a trace of its
own. A tracestate is kept only beside a valid traceparent, and cut to
``limits.TRACESTATE_MAX_CHARS`` by whole list members (section 3.3.1.5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from exportd.limits import TRACESTATE_MAX_CHARS

# version 00; a higher version is read by its first four fields (section 3.2.4).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# A header longer than this is no traceparent of any version worth reading: it
# is refused before the pattern runs over it.
TRACEPARENT_MAX_CHARS = 256
# Members longer than this go first when a tracestate must be cut (section 3.3.1.5).
_LONG_MEMBER = 128
# How much of a tracestate is read at most: 8 times what is kept, so that members
# over 128 characters can go first (section 3.3.1.5) without splitting megabytes.
_READ_CHARS = TRACESTATE_MAX_CHARS * 8
# A tracestate holds at most 32 list members (section 3.3.1.1).
_MAX_MEMBERS = 32
# A list member, key=value (section 3.3.1.3): a lower-case key, or tenant@system,
# and a value of printable ASCII but "," and "=", not ending in a space.
_KEY_CHARS = r"[a-z0-9_\-*/]"
_MEMBER = re.compile(
    rf"([a-z]{_KEY_CHARS}{{0,255}}|[a-z0-9]{_KEY_CHARS}{{0,240}}@[a-z]{_KEY_CHARS}{{0,13}})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)


@dataclass(frozen=True)
class TraceParent:
    """A valid traceparent: lower-case hex ids, neither all zeros."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits: the caller's span, the job's parent
    flags: int  # trace-flags; bit 0 is "sampled"

    @property
    def header(self) -> str:
        """As version 00 writes it."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"


def parse_traceparent(value: object) -> TraceParent | None:
    """The traceparent ``value`` names, or None when it is not one (any type, any
    length: W3C says a malformed one is ignored, section 3.2.2). Version ff is
    invalid; a future version is read by its first four fields; version 00 has
    exactly four."""
    if not isinstance(value, str) or len(value) > TRACEPARENT_MAX_CHARS:
        return None
    match = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceParent(trace_id, span_id, int(flags, 16))


def bounded_tracestate(value: object) -> str | None:
    """``value`` as a tracestate of at most ``TRACESTATE_MAX_CHARS`` characters, or None.

    Members are comma-separated ``key=value`` pairs (W3C, section 3.3.1.3); empty
    ones are dropped, at most 32 kept. Over the bound, members over 128 characters
    go first, then members from the end, as section 3.3.1.5 says a vendor cuts
    one. Anything not a string, with a member that is not a valid pair, or with a
    key twice, is None (ignored whole, like a bad traceparent).
    """
    if not isinstance(value, str) or not value.strip():
        return None
    # Read only what could survive: a header of megabytes is not split whole. The
    # member the read ends in may be cut short: it goes (W3C cuts whole members).
    pieces = value[: _READ_CHARS + 1].split(",")
    if len(value) > _READ_CHARS:
        pieces.pop()
    members = [m.strip(" \t") for m in pieces]
    members = [m for m in members if m][:_MAX_MEMBERS]
    if not all(_MEMBER.fullmatch(m) for m in members):
        return None
    # A key twice: W3C keys are unique, and OpenTelemetry drops such a list whole.
    keys = [m.split("=", 1)[0] for m in members]
    if len(set(keys)) != len(keys):
        return None
    if len(",".join(members)) > TRACESTATE_MAX_CHARS:
        members = [m for m in members if len(m) <= _LONG_MEMBER]
    while members and len(",".join(members)) > TRACESTATE_MAX_CHARS:
        members.pop()
    return ",".join(members) or None


def trace_context(traceparent: object, tracestate: object = None) -> dict[str, str] | None:
    """The ``trace_context`` document to store for these header values, or None
    when ``traceparent`` is not valid (then tracestate is dropped too: W3C,
    section 3.3.1). The document is at most about 600 bytes."""
    parent = parse_traceparent(traceparent)
    if parent is None:
        return None
    doc = {"traceparent": parent.header}
    state = bounded_tracestate(tracestate)
    if state is not None:
        doc["tracestate"] = state
    return doc


def from_document(doc: Any) -> dict[str, str] | None:
    """A stored ``trace_context`` re-read as :func:`trace_context` would write it,
    or None when it holds no valid traceparent (NULL, not an object, malformed)."""
    if not isinstance(doc, dict):
        return None
    return trace_context(doc.get("traceparent"), doc.get("tracestate"))
