"""The OpenAPI 3.1 description of the HTTP API, served at ``/v1/openapi.json``.

Written by hand, beside the routes it describes: a test checks that every
route is here and everything here is a route, and a schemathesis run checks
the answers against these schemas.
"""

from __future__ import annotations

from typing import Any

from exportd import __version__, limits
from exportd.api import openapi_pauses, openapi_workers
from exportd.api.openapi_components import (
    ERROR_KIND_PARAM,
    PAGE,
    SCHEMAS,
    STATE,
    TRACE_HEADERS,
    TS,
    TS_RANGE,
    bounded,
    param,
    ref,
)
from exportd.api.openapi_schedules import SCHEDULE_SCHEMAS, schedule_paths


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _error(description: str) -> dict[str, Any]:
    return _json(ref("Error"), description)


_OWNER = bounded(limits.OWNER_MAX_BYTES)
_ONE_OWNER = " Given more than once, every value must be the same owner (else 400)."
_SCOPE_HEADER = param(
    "X-Exportd-Owner",
    "header",
    _OWNER,
    "Act for this owner only: other owners' jobs are answered 404." + _ONE_OWNER,
)
_SCOPE_QUERY = param(
    "owner_scope",
    "query",
    _OWNER,
    "The owner scope, for callers that cannot set a header." + _ONE_OWNER,
)
_QUERY_VALUE = {"maxLength": limits.QUERY_VALUE_MAX_BYTES}
_JOB_ID = param("id", "path", {"type": "string", "format": "uuid"})
_SCOPED = [_SCOPE_HEADER, _SCOPE_QUERY]

_UNAUTHORIZED = _error("No valid bearer token.")
_UNAVAILABLE = _error("The database or the bucket does not answer; retry after Retry-After.")
_NOT_FOUND = _error("No such job (or another owner's, under an owner scope).")
_INVALID = _error("The request is invalid; `errors` lists every problem.")

# A kind's job options, as GET /v1/kinds shows them.
_KIND_OPTIONS = {
    "options": {"type": "object", "description": "The options a job gets unless it sets them."},
    "locked_options": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Option paths a job may not set to another value (csv: all of csv).",
    },
    "labels": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "Header text by column name (CSV and xlsx).",
    },
    "options_schema": {"type": "object", "description": "A JSON Schema of `options`."},
}
# Quotas (exportd.quotas): a kind's, as GET /v1/kinds shows it, and the refusal.
_KIND_QUOTA = {
    "type": ["object", "null"],
    "description": "At most `max` jobs of one owner created within `per` (a sliding "
    "window); null: no quota.",
    "required": ["max", "per", "per_seconds"],
    "properties": {
        "max": {"type": "integer", "minimum": 1},
        "per": {"type": "string", "description": "ISO 8601 duration, e.g. P1D."},
        "per_seconds": {"type": "number"},
    },
}
_QUOTA_EXCEEDED = _json(
    ref("Error"),
    "The owner has had the kind's quota of jobs in its window (`error` is "
    "quota_exceeded); `retry_at` says when the job can be asked for again.",
    headers={
        "Retry-After": {
            "description": "Whole seconds until retry_at, rounded up.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
)


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
            "schemas": {
                **SCHEMAS,
                **SCHEDULE_SCHEMAS,
                **openapi_pauses.SCHEMAS,
                **openapi_workers.SCHEMAS,
            },
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
                            param(
                                "owner",
                                "query",
                                _OWNER,
                                "Required unless the request has an owner scope.",
                            ),
                            param(
                                "state",
                                "query",
                                {
                                    "type": "array",
                                    "items": STATE,
                                    "maxItems": limits.QUERY_VALUES_MAX,
                                },
                                style="form",
                                explode=True,
                            ),
                            param(
                                "kind",
                                "query",
                                {
                                    "type": "array",
                                    "items": bounded(limits.KIND_MAX_BYTES),
                                    "maxItems": limits.QUERY_VALUES_MAX,
                                },
                                style="form",
                                explode=True,
                            ),
                            param(
                                "created_after",
                                "query",
                                {**TS, **_QUERY_VALUE},
                                f"Strictly after. {TS_RANGE}",
                            ),
                            param(
                                "created_before",
                                "query",
                                {**TS, **_QUERY_VALUE},
                                f"Strictly before. {TS_RANGE}",
                            ),
                            ERROR_KIND_PARAM,
                            *PAGE,
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
                                    "jobs": {"type": "array", "items": ref("Job")},
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
                        "parameters": [*_SCOPED, *TRACE_HEADERS],
                        "requestBody": {
                            "required": True,
                            "content": {"application/json": {"schema": ref("NewJob")}},
                        },
                    },
                    (
                        "202",
                        _json(
                            ref("Job"),
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
                    ("429", _QUOTA_EXCEEDED),
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
                    ("200", _json(ref("Job"), "The job.")),
                    ("400", _INVALID),
                    ("404", _NOT_FOUND),
                ),
                "delete": _v1(
                    {
                        "summary": "Cancel a pending or processing job, or delete a "
                        "completed export's object (the job becomes expired).",
                        "parameters": [_JOB_ID, *_SCOPED],
                    },
                    ("200", _json(ref("Job"), "Cancelled, or expired.")),
                    ("400", _INVALID),
                    ("404", _NOT_FOUND),
                    ("409", _error("Failed, cancelled or expired: nothing to do; see `job`.")),
                ),
            },
            "/v1/jobs/{id}/retry": {
                "post": _v1(
                    {
                        "summary": "Run a failed or cancelled job again: pending now, its "
                        "attempts reset, max_attempts unchanged, earlier runs kept.",
                        "parameters": [_JOB_ID, *_SCOPED],
                    },
                    (
                        "202",
                        _json(
                            ref("Job"),
                            "Pending again; `runs` lists the attempts so far.",
                            headers={"Location": {"schema": {"type": "string"}}},
                        ),
                    ),
                    ("400", _INVALID),
                    ("404", _NOT_FOUND),
                    (
                        "409",
                        _error(
                            "Not failed or cancelled (`state` says what it is), or its "
                            "dedupe_key has a live job (`duplicate_id`)."
                        ),
                    ),
                ),
            },
            "/v1/jobs/{id}/cancel": {
                "post": _v1(
                    {
                        "summary": "Cancel a pending or processing job, and nothing else: "
                        "a job that has already ended is left as it is (409).",
                        "parameters": [_JOB_ID, *_SCOPED],
                    },
                    ("200", _json(ref("Job"), "Cancelled.")),
                    ("400", _INVALID),
                    ("404", _NOT_FOUND),
                    (
                        "409",
                        _error(
                            "Completed, failed, cancelled or expired (`state` says "
                            "which): nothing was changed; see `job`."
                        ),
                    ),
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
                                    "download_url_expires_at": TS,
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
            **schedule_paths(),
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
                                                **_KIND_OPTIONS,
                                                "quota": _KIND_QUOTA,
                                                **openapi_pauses.KIND_LISTING_PROPERTIES,
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
            **openapi_pauses.PATHS,
            **openapi_workers.PATHS,
        },
    }
