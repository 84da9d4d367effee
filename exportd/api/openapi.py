"""The OpenAPI 3.1 description of the HTTP API, served at ``/v1/openapi.json``.

Written by hand, beside the routes it describes: a test checks that every
route is here and everything here is a route, and a schemathesis run checks
the answers against these schemas.
"""

from __future__ import annotations

from typing import Any

from exportd import __version__, limits
from exportd.api.requests import DEFAULT_LIMIT, MAX_LIMIT
from exportd.export.engine import SUPPORTED_FORMATS
from exportd.queue.enqueue import (
    DEFAULT_FORMAT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    MAX_ATTEMPTS_RANGE,
    PRIORITY_RANGE,
)
from exportd.queue.job import STATES

_TS = {"type": "string", "format": "date-time"}
_TS_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STATE = {"type": "string", "enum": list(STATES)}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_TS_RANGE = (
    f"From {limits.TIMESTAMP_MIN_ISO} up to (not including) {limits.TIMESTAMP_MAX_ISO}; "
    "other times are refused with 400."
)


def _bounded(max_bytes: int, description: str = "") -> dict[str, Any]:
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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_JOB = {
    "type": "object",
    "required": ["id", "owner", "kind", "params", "format", "state", "created_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "owner": {"type": "string"},
        "kind": {"type": "string"},
        "params": {"type": "object"},
        "format": {"type": "string"},
        "priority": {"type": "integer"},
        "run_after": _TS,
        "max_attempts": {"type": "integer"},
        "dedupe_key": _TEXT_OR_NULL,
        "state": _STATE,
        "attempts": {"type": "integer"},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "rows_written": {"type": "integer"},
        "bytes_written": {"type": "integer"},
        "worker_id": _TEXT_OR_NULL,
        "lease_expires_at": _TS_OR_NULL,
        "created_at": _TS,
        "started_at": _TS_OR_NULL,
        "finished_at": _TS_OR_NULL,
        "expires_at": _TS_OR_NULL,
        "updated_at": _TS,
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
        "download_url": {
            "type": "string",
            "description": "Only on a completed job: a fresh presigned URL.",
        },
        "download_url_expires_at": _TS,
    },
}

_NEW_JOB = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind"],
    "properties": {
        "owner": _bounded(
            limits.OWNER_MAX_BYTES,
            "Required unless the request has an owner scope (then it "
            "defaults to it and must equal it).",
        ),
        "kind": _bounded(limits.KIND_MAX_BYTES, "An export kind (GET /v1/kinds)."),
        "params": {
            "type": "object",
            "description": "Checked against the kind's schema. At most "
            f"{limits.PARAMS_MAX_BYTES} bytes as JSON text, nested at most "
            f"{limits.JSON_MAX_DEPTH} levels, no NUL characters.",
        },
        "format": {
            "type": "string",
            "enum": list(SUPPORTED_FORMATS),
            "default": DEFAULT_FORMAT,
            "description": "One of the kind's formats (GET /v1/kinds).",
        },
        "priority": {
            "type": "integer",
            "minimum": PRIORITY_RANGE[0],
            "maximum": PRIORITY_RANGE[1],
            "default": DEFAULT_PRIORITY,
        },
        "run_after": {**_TS, "description": f"With a UTC offset; default now. {_TS_RANGE}"},
        "max_attempts": {
            "type": "integer",
            "minimum": MAX_ATTEMPTS_RANGE[0],
            "maximum": MAX_ATTEMPTS_RANGE[1],
            "default": DEFAULT_MAX_ATTEMPTS,
        },
        "dedupe_key": _bounded(limits.DEDUPE_KEY_MAX_BYTES),
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
        "job": _ref("Job"),
        "state": {"type": "string"},
    },
}


def _param(
    name: str, where: str, schema: dict[str, Any], description: str = "", **extra: Any
) -> dict[str, Any]:
    param = {"name": name, "in": where, "required": where == "path", "schema": schema, **extra}
    if description:
        param["description"] = description
    return param


_OWNER = _bounded(limits.OWNER_MAX_BYTES)
_ONE_OWNER = " Given more than once, every value must be the same owner (else 400)."
_SCOPE_HEADER = _param(
    "X-Exportd-Owner",
    "header",
    _OWNER,
    "Act for this owner only: other owners' jobs are answered 404." + _ONE_OWNER,
)
_SCOPE_QUERY = _param(
    "owner_scope",
    "query",
    _OWNER,
    "The owner scope, for callers that cannot set a header." + _ONE_OWNER,
)
_QUERY_VALUE = {"maxLength": limits.QUERY_VALUE_MAX_BYTES}
_JOB_ID = _param("id", "path", {"type": "string", "format": "uuid"})
_SCOPED = [_SCOPE_HEADER, _SCOPE_QUERY]

_UNAUTHORIZED = _error("No valid bearer token.")
_UNAVAILABLE = _error("The database or the bucket does not answer; retry after Retry-After.")
_NOT_FOUND = _error("No such job (or another owner's, under an owner scope).")
_INVALID = _error("The request is invalid; `errors` lists every problem.")


def _v1(operation: dict[str, Any], *statuses: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    responses = {"401": _UNAUTHORIZED, "503": _UNAVAILABLE, **dict(statuses)}
    return {**operation, "security": [{"bearer": []}], "responses": responses}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "exportd",
            "version": __version__,
            "description": "Export jobs: enqueue, follow, download, cancel. See docs/api.md.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Job": _JOB, "NewJob": _NEW_JOB, "Error": _ERROR},
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Liveness: the process and its worker loop run.",
                    "security": [],
                    "responses": {
                        "200": _json({"type": "object", "required": ["status"]}, "Alive."),
                        "503": _error("The worker loop stopped."),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: database and bucket reachable, not draining.",
                    "security": [],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["status", "checks"],
                                "properties": {
                                    "checks": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    }
                                },
                            },
                            "Ready.",
                        ),
                        "503": _error("Not ready; `checks` says which check failed."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus text format.",
                    "security": [{}, {"bearer": []}],
                    "responses": {
                        "200": {
                            "description": "Metrics.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": _UNAUTHORIZED,
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": _json({"type": "object"}, "The OpenAPI document."),
                        "401": _UNAUTHORIZED,
                    },
                }
            },
            "/v1/jobs": {
                "get": _v1(
                    {
                        "summary": "An owner's jobs, newest first, a page at a time.",
                        "parameters": [
                            _param(
                                "owner",
                                "query",
                                _OWNER,
                                "Required unless the request has an owner scope.",
                            ),
                            _param(
                                "state",
                                "query",
                                {
                                    "type": "array",
                                    "items": _STATE,
                                    "maxItems": limits.QUERY_VALUES_MAX,
                                },
                                style="form",
                                explode=True,
                            ),
                            _param(
                                "kind",
                                "query",
                                {
                                    "type": "array",
                                    "items": _bounded(limits.KIND_MAX_BYTES),
                                    "maxItems": limits.QUERY_VALUES_MAX,
                                },
                                style="form",
                                explode=True,
                            ),
                            _param(
                                "created_after",
                                "query",
                                {**_TS, **_QUERY_VALUE},
                                f"Strictly after. {_TS_RANGE}",
                            ),
                            _param(
                                "created_before",
                                "query",
                                {**_TS, **_QUERY_VALUE},
                                f"Strictly before. {_TS_RANGE}",
                            ),
                            _param(
                                "limit",
                                "query",
                                {
                                    "type": "integer",
                                    "minimum": 1,
                                    "maximum": MAX_LIMIT,
                                    "default": DEFAULT_LIMIT,
                                },
                            ),
                            _param(
                                "cursor",
                                "query",
                                {"type": "string", **_QUERY_VALUE},
                                "next_cursor of the previous page.",
                            ),
                            *_SCOPED,
                        ],
                    },
                    (
                        "200",
                        _json(
                            {
                                "type": "object",
                                "required": ["jobs", "next_cursor"],
                                "properties": {
                                    "jobs": {"type": "array", "items": _ref("Job")},
                                    "next_cursor": {"type": ["string", "null"]},
                                },
                            },
                            "One page; next_cursor is null on the last.",
                        ),
                    ),
                    ("400", _INVALID),
                ),
                "post": _v1(
                    {
                        "summary": "Enqueue an export.",
                        "parameters": _SCOPED,
                        "requestBody": {
                            "required": True,
                            "content": {"application/json": {"schema": _ref("NewJob")}},
                        },
                    },
                    (
                        "202",
                        _json(
                            _ref("Job"),
                            "Enqueued.",
                            headers={
                                "Location": {
                                    "description": "The job's URL.",
                                    "schema": {"type": "string"},
                                }
                            },
                        ),
                    ),
                    ("400", _INVALID),
                    ("409", _error("A live job with this dedupe_key exists; it is in `job`.")),
                    (
                        "413",
                        _error(f"The body is over {limits.REQUEST_BODY_MAX_BYTES} bytes."),
                    ),
                ),
            },
            "/v1/jobs/{id}": {
                "get": _v1(
                    {
                        "summary": "A job; when completed, with a fresh download_url.",
                        "parameters": [_JOB_ID, *_SCOPED],
                    },
                    ("200", _json(_ref("Job"), "The job.")),
                    ("400", _INVALID),
                    ("404", _NOT_FOUND),
                ),
                "delete": _v1(
                    {
                        "summary": "Cancel a pending or processing job, or delete a "
                        "completed export's object (the job becomes expired).",
                        "parameters": [_JOB_ID, *_SCOPED],
                    },
                    ("200", _json(_ref("Job"), "Cancelled, or expired.")),
                    ("400", _INVALID),
                    ("404", _NOT_FOUND),
                    ("409", _error("Failed, cancelled or expired: nothing to do; see `job`.")),
                ),
            },
            "/v1/jobs/{id}/download": {
                "get": _v1(
                    {
                        "summary": "Redirect to a fresh presigned URL of the export.",
                        "parameters": [_JOB_ID, *_SCOPED],
                    },
                    (
                        "302",
                        _json(
                            {
                                "type": "object",
                                "required": ["download_url", "download_url_expires_at"],
                                "properties": {
                                    "download_url": {"type": "string"},
                                    "download_url_expires_at": _TS,
                                },
                            },
                            "Location is the presigned URL.",
                            headers={"Location": {"schema": {"type": "string"}}},
                        ),
                    ),
                    ("400", _INVALID),
                    ("404", _NOT_FOUND),
                    ("409", _error("Not completed (yet); `state` says what it is.")),
                    ("410", _error("The export expired and its object was deleted.")),
                ),
            },
            "/v1/kinds": {
                "get": _v1(
                    {"summary": "Export kinds with the JSON Schema of their params."},
                    (
                        "200",
                        _json(
                            {
                                "type": "object",
                                "required": ["kinds"],
                                "properties": {
                                    "kinds": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["name", "params_schema", "formats"],
                                            "properties": {
                                                "name": {"type": "string"},
                                                "description": {"type": "string"},
                                                "formats": {
                                                    "type": "array",
                                                    "items": {"type": "string"},
                                                },
                                                "params_schema": {"type": "object"},
                                            },
                                        },
                                    }
                                },
                            },
                            "The kinds this daemon runs.",
                        ),
                    ),
                ),
            },
        },
    }
