"""A structlog processor: log lines written inside a traced span carry its ids.

``trace_id`` (32 hex digits) and ``span_id`` (16) are those of the span current
where the line is logged (``seam.current_ids``), so a log line and the span of
the job attempt, S3 part or request it belongs to are found from each other.
Outside a span, or with tracing off, nothing is added.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from exportd.tracing.seam import current_ids


def add_trace_ids(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``event`` with ``trace_id`` and ``span_id`` when in a span."""
    ids = current_ids.get()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event
