"""The OpenAPI description of pausing and resuming kinds (``exportd.api.pauses``):
its paths and its schemas, which ``exportd.api.openapi`` merges into the document."""

from __future__ import annotations

from typing import Any

from exportd import limits
from exportd.api.openapi_components import TS, bounded, ref

_TS_OR_NULL = {**TS, "type": ["string", "null"]}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_PAUSE_FIELDS = {
    "paused_at": {**_TS_OR_NULL, "description": "Since when (null when not paused)."},
    "paused_by": {
        **_TEXT_OR_NULL,
        "description": 'Who paused it: "api", or the OS user and host of `exportd pause`.',
    },
    "reason": {**_TEXT_OR_NULL, "description": "The reason given, if any."},
}

# What GET /v1/kinds adds to each kind.
KIND_LISTING_PROPERTIES: dict[str, Any] = {
    "paused": {
        "type": "boolean",
        "description": "No daemon claims this kind's pending jobs (running jobs finish).",
    },
    "paused_all": {"type": "boolean", "description": "Paused because every kind is."},
    "paused_at": _PAUSE_FIELDS["paused_at"],
    "reason": _PAUSE_FIELDS["reason"],
}

_KIND_PAUSE = {
    "type": "object",
    "required": ["kind", "paused", "paused_all", "paused_at", "paused_by", "reason"],
    "properties": {
        "kind": {"type": "string"},
        "paused": KIND_LISTING_PROPERTIES["paused"],
        "paused_all": KIND_LISTING_PROPERTIES["paused_all"],
        **_PAUSE_FIELDS,
    },
    "description": "A kind's pause: its own, else the pause of every kind.",
}

_ALL_PAUSE = {
    "type": "object",
    "required": ["paused", "paused_at", "paused_by", "reason", "kinds"],
    "properties": {
        "paused": {"type": "boolean", "description": "Every kind is paused."},
        **_PAUSE_FIELDS,
        "kinds": {"type": "array", "items": ref("KindPause")},
    },
}

_PAUSE_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reason": {
            **bounded(limits.PAUSE_REASON_MAX_BYTES, "Why, for whoever looks later."),
            "type": ["string", "null"],
        }
    },
}

SCHEMAS = {"KindPause": _KIND_PAUSE}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_KIND = {
    "name": "kind",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": limits.KIND_MAX_BYTES},
}
_REFUSED_SCOPE = {
    "name": "X-Exportd-Owner",
    "in": "header",
    "required": False,
    "schema": bounded(limits.OWNER_MAX_BYTES),
    "description": "Refused here (403): pausing is an operator's act, not an owner's.",
}


def _operation(summary: str, answer: dict[str, Any], *, body: bool, kind: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": [_KIND, _REFUSED_SCOPE] if kind else [_REFUSED_SCOPE],
        "security": [{"bearer": []}],
        "responses": {
            "200": answer,
            "400": _json(ref("Error"), "The body or the owner scope is invalid."),
            "401": _json(ref("Error"), "No valid bearer token."),
            "403": _json(ref("Error"), "The request has an owner scope."),
            "503": _json(ref("Error"), "The database does not answer; retry after Retry-After."),
        },
    }
    if kind:
        op["responses"]["404"] = _json(ref("Error"), "No such kind in this daemon's definitions.")
    if body:
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": _PAUSE_BODY}},
        }
    return op


_KIND_ANSWER = _json(ref("KindPause"), "The kind's pause after the request.")
_ALL_ANSWER = _json(_ALL_PAUSE, "The pause of every kind after the request, and each kind's.")

PATHS = {
    "/v1/kinds/{kind}/pause": {
        "post": _operation(
            "Pause a kind: no daemon claims its pending jobs; running jobs finish. "
            "Pausing a paused kind keeps its first pause.",
            _KIND_ANSWER,
            body=True,
            kind=True,
        )
    },
    "/v1/kinds/{kind}/resume": {
        "post": _operation(
            "Resume a kind (lift its own pause; a pause of every kind still holds it).",
            _KIND_ANSWER,
            body=False,
            kind=True,
        )
    },
    "/v1/kinds/pause": {
        "post": _operation("Pause every kind.", _ALL_ANSWER, body=True, kind=False)
    },
    "/v1/kinds/resume": {
        "post": _operation(
            "Resume every kind: lift the pause of every kind and each kind's own.",
            _ALL_ANSWER,
            body=False,
            kind=False,
        )
    },
}
