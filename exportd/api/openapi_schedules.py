"""The OpenAPI description of the /v1/schedules routes and their schemas (Schedule,
NewSchedule, SchedulePatch); ``exportd.api.openapi`` adds them to the document."""

from __future__ import annotations

from typing import Any

from exportd import limits
from exportd.api.openapi_components import PAGE, TS, bounded, param, ref
from exportd.api.schedule_requests import DEFAULT_TIMEZONE
from exportd.definitions.offered_formats import SUPPORTED_FORMATS

_TS_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_CRON = {
    "type": "string",
    "minLength": 1,
    "maxLength": limits.SCHEDULE_CRON_MAX_BYTES,
    "description": "Five fields (minute hour day-of-month month day-of-week), e.g. "
    "'0 8 * * 1', or @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly; "
    "evaluated in `timezone`. See docs/schedules.md.",
}
_ZONE = {
    "type": "string",
    "minLength": 1,
    "maxLength": limits.SCHEDULE_TIMEZONE_MAX_BYTES,
    "default": DEFAULT_TIMEZONE,
    "description": "An IANA time zone name, e.g. Europe/Zurich.",
}
_OPTIONS = {
    **ref("Options"),
    "description": "The options of every job the schedule makes, checked as a job's "
    "(POST /v1/jobs) and again at each run.",
}
_PARAMS = {
    "type": "object",
    "description": f"Checked against the kind's schema. At most {limits.PARAMS_MAX_BYTES} "
    "bytes as JSON text.",
}
_FORMAT = {"type": "string", "enum": list(SUPPORTED_FORMATS)}

_SCHEDULE = {
    "type": "object",
    "required": ["id", "owner", "kind", "params", "format", "options", "cron", "timezone"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "owner": {"type": "string"},
        "kind": {"type": "string"},
        "params": {"type": "object"},
        "format": {"type": "string"},
        "options": {"type": "object"},
        "cron": {"type": "string"},
        "timezone": {"type": "string"},
        "enabled": {"type": "boolean"},
        "next_run_at": {
            **_TS_OR_NULL,
            "description": "The next occurrence (null until the scheduler first sees a row "
            "an application inserted itself).",
        },
        "created_at": TS,
        "updated_at": TS,
        "last_run_at": _TS_OR_NULL,
        "last_job_id": {"type": ["string", "null"], "format": "uuid"},
        "last_error": {"type": ["string", "null"]},
    },
}

_NEW_SCHEDULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "cron"],
    "properties": {
        "owner": bounded(limits.OWNER_MAX_BYTES, "Required unless the request has an owner scope."),
        "kind": bounded(limits.KIND_MAX_BYTES, "An export kind (GET /v1/kinds)."),
        "params": _PARAMS,
        "format": _FORMAT,
        "options": _OPTIONS,
        "cron": _CRON,
        "timezone": _ZONE,
        "enabled": {"type": "boolean", "default": True},
    },
}

_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "params": _PARAMS,
        "format": _FORMAT,
        "options": _OPTIONS,
        "cron": _CRON,
        "timezone": _ZONE,
        "enabled": {"type": "boolean"},
    },
}

SCHEDULE_SCHEMAS = {"Schedule": _SCHEDULE, "NewSchedule": _NEW_SCHEDULE, "SchedulePatch": _PATCH}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


_OWNER = bounded(limits.OWNER_MAX_BYTES)
_SCOPED = [
    param("X-Exportd-Owner", "header", _OWNER, "Act for this owner only."),
    param("owner_scope", "query", _OWNER, "The owner scope, for callers without headers."),
]
_ID = param("id", "path", {"type": "string", "format": "uuid"})
_NOT_FOUND = _json(ref("Error"), "No such schedule (or another owner's, under an owner scope).")
_INVALID = _json(ref("Error"), "The request is invalid; `errors` lists every problem.")
_TOO_LARGE = _json(ref("Error"), f"The body is over {limits.REQUEST_BODY_MAX_BYTES} bytes.")


def _v1(operation: dict[str, Any], *statuses: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    responses = {
        "401": _json(ref("Error"), "No valid bearer token."),
        "503": _json(ref("Error"), "The database does not answer; retry after Retry-After."),
        **dict(statuses),
    }
    return {**operation, "security": [{"bearer": []}], "responses": responses}


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": ref(name)}}}


def schedule_paths() -> dict[str, Any]:
    """The /v1/schedules paths of the OpenAPI document."""
    page = {
        "type": "object",
        "required": ["schedules", "next_cursor"],
        "properties": {
            "schedules": {"type": "array", "items": ref("Schedule")},
            "next_cursor": {"type": ["string", "null"]},
        },
    }
    return {
        "/v1/schedules": {
            "get": _v1(
                {
                    "summary": "An owner's schedules, newest first, a page at a time.",
                    "parameters": [
                        param("owner", "query", _OWNER, "Required unless the request is scoped."),
                        *PAGE,
                        *_SCOPED,
                    ],
                },
                ("200", _json(page, "One page; next_cursor is null on the last.")),
                ("400", _INVALID),
            ),
            "post": _v1(
                {
                    "summary": "Create a recurring export.",
                    "parameters": _SCOPED,
                    "requestBody": _body("NewSchedule"),
                },
                (
                    "201",
                    _json(
                        ref("Schedule"),
                        "Created, with its first next_run_at.",
                        headers={"Location": {"schema": {"type": "string"}}},
                    ),
                ),
                ("400", _INVALID),
                ("413", _TOO_LARGE),
            ),
        },
        "/v1/schedules/{id}": {
            "get": _v1(
                {"summary": "A schedule.", "parameters": [_ID, *_SCOPED]},
                ("200", _json(ref("Schedule"), "The schedule.")),
                ("400", _INVALID),
                ("404", _NOT_FOUND),
            ),
            "patch": _v1(
                {
                    "summary": "Enable, disable or change a schedule; a new cron expression "
                    "or time zone, or enabling it, recomputes next_run_at.",
                    "parameters": [_ID, *_SCOPED],
                    "requestBody": _body("SchedulePatch"),
                },
                ("200", _json(ref("Schedule"), "The schedule as changed.")),
                ("400", _INVALID),
                ("404", _NOT_FOUND),
                ("413", _TOO_LARGE),
            ),
            "delete": _v1(
                {
                    "summary": "Delete a schedule; the jobs it made stay, with their schedule_id.",
                    "parameters": [_ID, *_SCOPED],
                },
                ("204", {"description": "Deleted."}),
                ("400", _INVALID),
                ("404", _NOT_FOUND),
            ),
        },
    }
