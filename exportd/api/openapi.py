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
from exportd.api.openapi_operations import (
    INVALID,
    JOB_ACTION_PATHS,
    JOB_ID,
    NOT_FOUND,
    OWNER,
    SCOPED,
    UNAUTHORIZED,
    error_answer,
    json_answer,
    v1,
)
from exportd.api.openapi_schedules import SCHEDULE_SCHEMAS, schedule_paths

_QUERY_VALUE = {"maxLength": limits.QUERY_VALUE_MAX_BYTES}

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
_QUOTA_EXCEEDED = json_answer(
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
                        "200": json_answer({"type": "object", "required": ["status"]}, "Alive."),
                        "503": error_answer("The worker loop stopped."),
                    },
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: database and bucket reachable, not draining.",
                    "security": [],
                    "responses": {
                        "200": json_answer(
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
                        "503": error_answer("Not ready; `checks` says which check failed."),
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
                        "401": UNAUTHORIZED,
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": json_answer({"type": "object"}, "The OpenAPI document."),
                        "401": UNAUTHORIZED,
                    },
                }
            },
            "/v1/jobs": {
                "get": v1(
                    {
                        "summary": "An owner's jobs, newest first, a page at a time.",
                        "parameters": [
                            param(
                                "owner",
                                "query",
                                OWNER,
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
                            *SCOPED,
                        ],
                    },
                    (
                        "200",
                        json_answer(
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
                    ("400", INVALID),
                ),
                "post": v1(
                    {
                        "summary": "Enqueue an export.",
                        "parameters": [*SCOPED, *TRACE_HEADERS],
                        "requestBody": {
                            "required": True,
                            "content": {"application/json": {"schema": ref("NewJob")}},
                        },
                    },
                    (
                        "202",
                        json_answer(
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
                    ("400", INVALID),
                    (
                        "409",
                        error_answer("A live job with this dedupe_key exists; it is in `job`."),
                    ),
                    ("429", _QUOTA_EXCEEDED),
                    (
                        "413",
                        error_answer(f"The body is over {limits.REQUEST_BODY_MAX_BYTES} bytes."),
                    ),
                ),
            },
            "/v1/jobs/{id}": {
                "get": v1(
                    {
                        "summary": "A job; when completed, with a fresh download_url.",
                        "parameters": [JOB_ID, *SCOPED],
                    },
                    ("200", json_answer(ref("Job"), "The job.")),
                    ("400", INVALID),
                    ("404", NOT_FOUND),
                ),
                "delete": v1(
                    {
                        "summary": "Cancel a pending or processing job, or delete a "
                        "completed export's object (the job becomes expired).",
                        "parameters": [JOB_ID, *SCOPED],
                    },
                    ("200", json_answer(ref("Job"), "Cancelled, or expired.")),
                    ("400", INVALID),
                    ("404", NOT_FOUND),
                    (
                        "409",
                        error_answer("Failed, cancelled or expired: nothing to do; see `job`."),
                    ),
                ),
            },
            **JOB_ACTION_PATHS,
            "/v1/jobs/{id}/download": {
                "get": v1(
                    {
                        "summary": "Redirect to a fresh presigned URL of the export.",
                        "parameters": [JOB_ID, *SCOPED],
                    },
                    (
                        "302",
                        json_answer(
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
                    ("400", INVALID),
                    ("404", NOT_FOUND),
                    ("409", error_answer("Not completed (yet); `state` says what it is.")),
                    ("410", error_answer("The export expired and its object was deleted.")),
                ),
            },
            **schedule_paths(),
            "/v1/kinds": {
                "get": v1(
                    {"summary": "Export kinds with the JSON Schema of their params."},
                    (
                        "200",
                        json_answer(
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
