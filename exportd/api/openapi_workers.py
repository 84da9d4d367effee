"""The OpenAPI description of ``GET /v1/workers`` (``exportd.api.workers``): its path
and its schemas, which ``exportd.api.openapi`` merges into the document."""

from __future__ import annotations

from typing import Any

from exportd import limits
from exportd.api.openapi_components import TS, bounded, ref

_COUNT = {"type": "integer", "minimum": 0}

_RUNNING_JOB = {
    "type": "object",
    "required": [
        "id",
        "owner",
        "kind",
        "worker_id",
        "progress",
        "rows_written",
        "bytes_written",
        "attempts",
        "max_attempts",
        "started_at",
        "lease_expires_at",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "owner": {"type": "string"},
        "kind": {"type": "string"},
        "worker_id": {"type": "string"},
        "progress": {
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "description": "Percent done, as of the job's last heartbeat (0 when unknown).",
        },
        "rows_written": {**_COUNT, "description": "Rows written so far."},
        "bytes_written": {**_COUNT, "description": "Bytes written so far."},
        "attempts": {**_COUNT, "description": "The attempt running (1 for the first)."},
        "max_attempts": {"type": "integer", "minimum": 1},
        "started_at": {
            **TS,
            "type": ["string", "null"],
            "description": "When this attempt started.",
        },
        "lease_expires_at": {
            **TS,
            "description": "Until when the worker's lease holds; renewed by its heartbeats.",
        },
    },
    "description": "A processing job, as its worker's last heartbeat left it.",
}

_WORKER = {
    "type": "object",
    "required": [
        "worker_id",
        "version",
        "host",
        "pid",
        "started_at",
        "concurrency",
        "heartbeat_seconds",
        "last_heartbeat_at",
        "running",
    ],
    "properties": {
        "worker_id": {
            "type": "string",
            "description": "The id a job's worker_id names: host, pid and a random suffix.",
        },
        "version": bounded(limits.WORKER_VERSION_MAX_BYTES, "exportd's version."),
        "host": bounded(limits.WORKER_HOST_MAX_BYTES, "The host name it runs on."),
        "pid": {"type": "integer", "minimum": 1},
        "started_at": TS,
        "concurrency": {"type": "integer", "minimum": 1, "description": "Jobs at once, at most."},
        "heartbeat_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "Its heartbeat interval: it is alive while its last heartbeat "
            "is within three of them.",
        },
        "last_heartbeat_at": TS,
        "running": {"type": "array", "items": ref("RunningJob")},
    },
    "description": "A daemon alive now.",
}

SCHEMAS = {"Worker": _WORKER, "RunningJob": _RUNNING_JOB}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_REFUSED_SCOPE = {
    "name": "X-Exportd-Owner",
    "in": "header",
    "required": False,
    "schema": bounded(limits.OWNER_MAX_BYTES),
    "description": "Refused here (403): the daemons are an operator's view, not an owner's.",
}

PATHS = {
    "/v1/workers": {
        "get": {
            "summary": "The daemons alive now, oldest first, each with the jobs it runs.",
            "parameters": [_REFUSED_SCOPE],
            "security": [{"bearer": []}],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["workers"],
                        "properties": {"workers": {"type": "array", "items": ref("Worker")}},
                    },
                    "The daemons alive now.",
                ),
                "400": _json(ref("Error"), "A query parameter or the owner scope is invalid."),
                "401": _json(ref("Error"), "No valid bearer token."),
                "403": _json(ref("Error"), "The request has an owner scope."),
                "503": _json(
                    ref("Error"), "The database does not answer; retry after Retry-After."
                ),
            },
        }
    },
}
