"""The body of a webhook: the event and the job, bounded in bytes. Pure.

``{"type": "export.completed", "timestamp": "<ISO 8601 of the event>", "data":
{...}}``, where ``data`` is the job as ``GET /v1/jobs/{id}`` shows it without
a download URL (one would leak the export to whoever reads the receiver's
logs; the receiver asks the API for a fresh one).

Every caller-written column is bounded in the table (exportd/limits.py), so a
job's body fits ``BODY_MAX_BYTES`` with room to spare. A row from before
those bounds (or a column written by hand) may not: then each field whose
JSON is over ``FIELD_CUT_BYTES`` is sent as null and named in
``data.truncated``, which bounds the body by the number of fields.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

# Sent whole up to this size: four times the largest params document, which
# leaves room for every other bounded column several times over.
BODY_MAX_BYTES = 256 * 1024
# Past BODY_MAX_BYTES, a field whose JSON is longer than this is left out.
FIELD_CUT_BYTES = 1024
# Never in a webhook, even should a caller's document carry them.
_LEFT_OUT = frozenset({"download_url", "download_url_expires_at"})


def _dumps(value: Any) -> bytes:
    # ensure_ascii=False: a non-ASCII character takes its UTF-8 bytes, not
    # six or twelve bytes of escape; compact separators.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_body(event_type: str, occurred_at: datetime, job: dict[str, Any]) -> bytes:
    """The UTF-8 JSON body of one event: ``job`` is the job's document (JSON-ready,
    as ``api.views.job_document`` makes it). At most ``BODY_MAX_BYTES`` whatever
    the row holds, cutting the largest fields as the module says."""
    data = {k: v for k, v in job.items() if k not in _LEFT_OUT}
    envelope = {"type": event_type, "timestamp": occurred_at.isoformat(), "data": data}
    body = _dumps(envelope)
    if len(body) <= BODY_MAX_BYTES:
        return body
    cut = sorted(k for k, v in data.items() if len(_dumps(v)) > FIELD_CUT_BYTES)
    kept = {k: (None if k in cut else v) for k, v in data.items()}
    kept["truncated"] = cut
    return _dumps({**envelope, "data": kept})
