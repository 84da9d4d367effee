"""The schemas of the OpenAPI document's components (Job, NewJob, Error), and the small
schemas and parameters its paths share: timestamps, job states, bounded
strings, a parameter, the parameters of a keyset page.

``exportd.api.openapi`` assembles the document from these.
"""

from __future__ import annotations

from typing import Any

from exportd import limits
from exportd.api.query_params import DEFAULT_LIMIT, MAX_LIMIT
from exportd.definitions.offered_formats import installed_formats
from exportd.definitions.options.schema import options_schema
from exportd.queue.enqueue import (
    DEFAULT_FORMAT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    MAX_ATTEMPTS_RANGE,
    PRIORITY_RANGE,
)
from exportd.queue.job import STATES


def param(
    name: str, where: str, schema: dict[str, Any], description: str = "", **extra: Any
) -> dict[str, Any]:
    """One OpenAPI parameter: ``where`` is path, query or header (a path's is required)."""
    found = {"name": name, "in": where, "required": where == "path", "schema": schema, **extra}
    if description:
        found["description"] = description
    return found


# The page of a keyset-paginated list route (api.query_params.page_params).
PAGE = [
    param(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    param(
        "cursor",
        "query",
        {"type": "string", "maxLength": limits.QUERY_VALUE_MAX_BYTES},
        "next_cursor of the previous page.",
    ),
]

TS = {"type": "string", "format": "date-time"}
_TS_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_INT_OR_NULL = {"type": ["integer", "null"]}
STATE = {"type": "string", "enum": list(STATES)}
_TEXT_OR_NULL = {"type": ["string", "null"]}
TS_RANGE = (
    f"From {limits.TIMESTAMP_MIN_ISO} up to (not including) {limits.TIMESTAMP_MAX_ISO}; "
    "other times are refused with 400."
)


def bounded(max_bytes: int, description: str = "") -> dict[str, Any]:
    """A non-empty string of at most ``max_bytes`` bytes of UTF-8. JSON Schema's
    maxLength counts characters, so it says the number and the text says bytes:
    a shorter text of multi-byte characters may still be refused with 400."""
    text = f"At most {max_bytes} bytes of UTF-8, without control characters."
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_bytes,
        "description": f"{description} {text}".strip(),
    }


# POST /v1/jobs: the caller's W3C trace context, which the job keeps (docs/operations.md).
TRACE_HEADERS = [
    {
        "name": "traceparent",
        "in": "header",
        "required": False,
        "description": "W3C Trace Context: the caller's span (00-<trace id>-<span id>-<flags>). "
        "The job's spans continue its trace; a malformed one is ignored.",
        "schema": {"type": "string"},
    },
    {
        "name": "tracestate",
        "in": "header",
        "required": False,
        "description": "W3C Trace Context: vendor entries, kept with a valid traceparent; "
        f"cut to {limits.TRACESTATE_MAX_CHARS} characters by whole entries.",
        "schema": {"type": "string"},
    },
]


def ref(name: str) -> dict[str, str]:
    """A JSON Reference to the component schema ``name`` (``Job``, ``NewJob``, ``Error``)."""
    return {"$ref": f"#/components/schemas/{name}"}


# GET /v1/jobs: the jobs whose last error was of one of these kinds (a row may
# hold any error_kind an application wrote, so any text is taken).
ERROR_KIND_PARAM = param(
    "error_kind",
    "query",
    {
        "type": "array",
        "items": bounded(limits.QUERY_VALUE_MAX_BYTES),
        "maxItems": limits.QUERY_VALUES_MAX,
    },
    "Repeatable: the jobs whose error_kind is one of these.",
    style="form",
    explode=True,
)


_JOB = {
    "type": "object",
    "required": ["id", "owner", "kind", "params", "format", "state", "created_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "owner": {"type": "string"},
        "kind": {"type": "string"},
        "params": {"type": "object"},
        "options": {"type": "object", "description": "The job's options, as written."},
        "format": {"type": "string"},
        "priority": {"type": "integer"},
        "run_after": TS,
        "max_attempts": {"type": "integer"},
        "dedupe_key": _TEXT_OR_NULL,
        "state": STATE,
        "attempts": {"type": "integer"},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "rows_written": {"type": "integer"},
        "bytes_written": {"type": "integer"},
        "worker_id": _TEXT_OR_NULL,
        "lease_expires_at": _TS_OR_NULL,
        "created_at": TS,
        "started_at": _TS_OR_NULL,
        "finished_at": _TS_OR_NULL,
        "expires_at": _TS_OR_NULL,
        "updated_at": TS,
        "object_key": _TEXT_OR_NULL,
        "size_bytes": _INT_OR_NULL,
        "row_count": _INT_OR_NULL,
        "checksum_sha256": _TEXT_OR_NULL,
        "filename": {
            "type": ["string", "null"],
            "description": "The name a download is saved under, in full (the object "
            "key's last segment may be cut to fit S3's limits).",
        },
        "error": _TEXT_OR_NULL,
        "error_kind": _TEXT_OR_NULL,
        "schedule_id": {
            "type": ["string", "null"],
            "format": "uuid",
            "description": "The schedule that made this job (kept after it is deleted).",
        },
        "trace_context": {
            "type": ["object", "null"],
            "description": "The W3C trace context of the request that asked for the job "
            "(its traceparent's trace id names the trace of the job's spans); null for "
            "none, or when what was stored holds no valid traceparent.",
            "properties": {
                "traceparent": {"type": "string", "maxLength": 55},
                "tracestate": {"type": "string", "maxLength": limits.TRACESTATE_MAX_CHARS},
            },
            "required": ["traceparent"],
            "additionalProperties": False,
        },
        "download_url": {
            "type": "string",
            "description": "Only on a completed job: a fresh presigned URL.",
        },
        "download_url_expires_at": TS,
        "runs": {
            "type": "array",
            "items": ref("Run"),
            "description": "Only on GET /v1/jobs/{id} and a retry's answer: the job's "
            "ended attempts, oldest first (the last 100), kept across retries.",
        },
        "deliveries": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/WebhookDelivery"},
            "description": "Only in GET /v1/jobs/{id}: the job's webhook deliveries, "
            "oldest first, the last 50 (docs/notifications.md).",
        },
    },
}

# One ended attempt of a job (exportd.job_attempts, docs/api.md).
_RUN = {
    "type": "object",
    "required": ["attempt", "finished_at", "outcome", "next_state"],
    "properties": {
        "attempt": {
            "type": "integer",
            "description": "The job's attempt number when it ended (a retry starts again at 1).",
        },
        "worker_id": _TEXT_OR_NULL,
        "started_at": _TS_OR_NULL,
        "finished_at": TS,
        "outcome": {
            "type": "string",
            "description": "completed, failed, retry_scheduled, cancelled, reaped "
            "(its worker stopped renewing the lease) or handed_back (at a shutdown, "
            "the attempt given back).",
        },
        "next_state": {"type": "string", "description": "The state it left the job in."},
        "error_kind": _TEXT_OR_NULL,
        "error": {"type": ["string", "null"], "maxLength": limits.ERROR_MAX_CHARS},
    },
}


_WEBHOOK_DELIVERY = {
    "type": "object",
    "required": ["id", "type", "occurred_at", "state", "attempts", "recent_attempts"],
    "properties": {
        "id": {"type": "string", "description": "The webhook-id header: msg_ and 32 hex digits."},
        "type": {
            "type": "string",
            "enum": ["export.completed", "export.failed", "export.cancelled", "export.expired"],
        },
        "occurred_at": TS,
        "state": {"type": "string", "enum": ["pending", "delivered", "failed", "no_target"]},
        "attempts": {"type": "integer", "minimum": 0},
        "next_attempt_at": {**_TS_OR_NULL, "description": "While pending: the next attempt."},
        "finished_at": _TS_OR_NULL,
        "last_status": {**_INT_OR_NULL, "description": "The last attempt's HTTP status."},
        "last_error": _TEXT_OR_NULL,
        "recent_attempts": {
            "type": "array",
            "description": "The last attempts (at most 20), oldest first.",
            "items": {
                "type": "object",
                "required": ["attempt", "started_at", "latency_ms"],
                "properties": {
                    "attempt": {"type": "integer", "minimum": 1},
                    "started_at": TS,
                    "status": {**_INT_OR_NULL, "description": "null: no answer came."},
                    "error": _TEXT_OR_NULL,
                    "latency_ms": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
}

_NEW_JOB = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind"],
    "properties": {
        "owner": bounded(
            limits.OWNER_MAX_BYTES,
            "Required unless the request has an owner scope (then it "
            "defaults to it and must equal it).",
        ),
        "kind": bounded(limits.KIND_MAX_BYTES, "An export kind (GET /v1/kinds)."),
        "params": {
            "type": "object",
            "description": "Checked against the kind's schema. At most "
            f"{limits.PARAMS_MAX_BYTES} bytes as JSON text, nested at most "
            f"{limits.JSON_MAX_DEPTH} levels, no NUL characters.",
        },
        "format": {
            "type": "string",
            # parquet only where its extra is installed (exportd[parquet]).
            "enum": list(installed_formats()),
            "default": DEFAULT_FORMAT,
            "description": "One of the kind's formats (GET /v1/kinds).",
        },
        "priority": {
            "type": "integer",
            "minimum": PRIORITY_RANGE[0],
            "maximum": PRIORITY_RANGE[1],
            "default": DEFAULT_PRIORITY,
        },
        "run_after": {**TS, "description": f"With a UTC offset; default now. {TS_RANGE}"},
        "max_attempts": {
            "type": "integer",
            "minimum": MAX_ATTEMPTS_RANGE[0],
            "maximum": MAX_ATTEMPTS_RANGE[1],
            "default": DEFAULT_MAX_ATTEMPTS,
        },
        "dedupe_key": bounded(limits.DEDUPE_KEY_MAX_BYTES),
        "options": {
            **ref("Options"),
            "description": "How the file is written, merged over the kind's defaults "
            "(GET /v1/kinds: options, locked_options, options_schema). Checked with the "
            "params: every problem of both in one 400.",
        },
    },
}

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. not_found."},
        "message": {"type": "string", "description": "What happened and what to do."},
        "errors": {
            "type": "array",
            "description": "On 400: every problem with the request.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        "job": ref("Job"),
        "state": {"type": "string"},
        "duplicate_id": {
            "type": "string",
            "format": "uuid",
            "description": "On a refused retry: the live job with the same dedupe_key.",
        },
        "retry_at": {
            **TS,
            "description": "On 429 quota_exceeded: when the job can be asked for again.",
        },
    },
}


# The options document of any kind (a kind's own, with its defaults and locks: GET /v1/kinds).
_OPTIONS = {k: v for k, v in options_schema().items() if k not in ("$schema", "title")}

SCHEMAS = {
    "Options": _OPTIONS,
    "Job": _JOB,
    "NewJob": _NEW_JOB,
    "Error": _ERROR,
    "Run": _RUN,
    "WebhookDelivery": _WEBHOOK_DELIVERY,
}
