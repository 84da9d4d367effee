"""What a schedule request asks for (``POST``/``PATCH /v1/schedules``, ``exportd
schedule add``), read and checked without any I/O, every problem at once.

The params are checked as ``POST /v1/jobs`` checks a job's (the kind's own
validator, ``params_problems``), the owner and the kind by the same byte
bounds, and the options as a job's (``api.job_documents``): they become the
options of every job the schedule makes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exportd import limits
from exportd.api.job_documents import kind_problems, options_document
from exportd.api.query_params import Cursor, owner_param, page_params
from exportd.api.requests import FieldError, RequestInvalid, _shown, params_problems
from exportd.definitions.kinds import Definitions, Kind
from exportd.definitions.offered_formats import default_format
from exportd.definitions.params.spec import InvalidParams
from exportd.errors import ExportError
from exportd.limits import identifier_problem
from exportd.queue import cron
from exportd.queue.cron import CronSpec
from exportd.queue.enqueue import NewJob, problems

DEFAULT_TIMEZONE = "UTC"

_CREATE_FIELDS = ("owner", "kind", "params", "format", "options", "cron", "timezone", "enabled")
_PATCH_FIELDS = ("params", "format", "options", "cron", "timezone", "enabled")


@dataclass(frozen=True)
class ScheduleRequest:
    """A schedule's caller-written fields, every check passed; ``spec`` its cron
    expression read in its zone (None only for a PATCH that disables a schedule
    and leaves its cron expression and zone as they are: they are not read)."""

    owner: str
    kind: str
    params: dict[str, Any]
    format: str
    options: dict[str, Any]
    cron: str
    timezone: str
    enabled: bool
    spec: CronSpec | None


def _unknown(body: Mapping[str, Any], allowed: Sequence[str]) -> list[FieldError]:
    return [
        FieldError(_shown(name), f"unknown field; allowed: {', '.join(allowed)}")
        for name in body
        if name not in allowed
    ]


def _params(
    raw: object, kind: Kind | None, errors: list[FieldError], kind_errors: bool = True
) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(FieldError("params", "must be a JSON object"))
        return {}
    errors.extend(params_problems(raw))
    if kind is not None:
        try:
            kind.validate(raw)
        except InvalidParams as exc:
            errors.extend(
                FieldError(f"params.{e.field}" if e.field else "params", e.message)
                for e in exc.errors
            )
    return raw


def _options(
    raw: object,
    kind: Kind | None,
    errors: list[FieldError],
    zones: Container[str] | None,
) -> dict[str, Any]:
    """The schedule's options, checked as a job's of ``kind`` would be (without a
    kind, their shape only)."""
    found: list[tuple[str, str]] = []
    options = options_document(raw, found)
    found.extend(kind_problems(kind, {}, options, zones, check_params=False))
    errors.extend(FieldError(field, message) for field, message in found)
    return options


def _format(
    raw: object, known: Sequence[str], errors: list[FieldError], default: str | None
) -> str:
    if raw is None and default is not None:
        return default
    if raw is None:
        return default_format(tuple(known))
    if raw not in known:
        errors.append(FieldError("format", f"must be one of {', '.join(known)}"))
        return str(known[0])
    return str(raw)


def _cron(raw_cron: object, raw_zone: object, errors: list[FieldError]) -> cron.CronSpec | None:
    ok = True
    if not isinstance(raw_cron, str) or not raw_cron:
        errors.append(FieldError("cron", "is required: five fields, e.g. '0 8 * * 1', or @daily"))
        ok = False
    elif problem := identifier_problem(raw_cron, limits.SCHEDULE_CRON_MAX_BYTES):
        errors.append(FieldError("cron", problem))
        ok = False
    else:
        try:
            # Read in UTC whatever the zone: a wrong zone must not hide it.
            cron.parse(raw_cron, "UTC")
        except cron.CronError as exc:
            errors.append(FieldError("cron", str(exc)))
            ok = False
    if not isinstance(raw_zone, str) or not raw_zone:
        errors.append(FieldError("timezone", "must be an IANA time zone name, e.g. Europe/Zurich"))
        return None
    if problem := cron.zone_problem(raw_zone):
        errors.append(FieldError("timezone", problem))
        return None
    if not ok:
        return None
    assert isinstance(raw_cron, str)
    try:
        return cron.parse(raw_cron, raw_zone)
    except cron.CronError as exc:
        errors.append(FieldError("cron", str(exc)))
        return None


def _enabled(raw: object, default: bool, errors: list[FieldError]) -> bool:
    if raw is None:
        return default
    if not isinstance(raw, bool):
        errors.append(FieldError("enabled", "must be true or false"))
        return default
    return raw


def parse_new_schedule(
    body: object,
    definitions: Definitions | None,
    formats_for: Callable[[Kind | None], Sequence[str]],
    scope: str | None,
    zones: Container[str] | None = None,
) -> ScheduleRequest:
    """``POST /v1/schedules``: a schedule every check passed, or RequestInvalid
    listing every problem. ``definitions`` None (the CLI without definitions)
    leaves the kind and its params to be checked at each run. ``zones``: the
    time zone names Postgres knows, for ``options.timezone``."""
    if not isinstance(body, dict):
        raise RequestInvalid([FieldError("", "the body must be a JSON object")])
    errors = _unknown(body, _CREATE_FIELDS)
    owner = body.get("owner")
    if owner is None:
        owner = scope
    if not isinstance(owner, str) or not owner:
        errors.append(FieldError("owner", "is required: a non-empty string"))
        owner = None
    elif scope is not None and owner != scope:
        errors.append(FieldError("owner", "must equal the owner scope of the request"))
    kind_name = body.get("kind")
    kind: Kind | None = None
    if not isinstance(kind_name, str) or not kind_name:
        errors.append(FieldError("kind", "is required: the name of an export kind (GET /v1/kinds)"))
        kind_name = None
    elif definitions is not None and identifier_problem(kind_name, limits.KIND_MAX_BYTES) is None:
        try:
            kind = definitions.require(kind_name)
        except ExportError as exc:
            errors.append(FieldError("kind", exc.message))
    # The job's own rules, by the function POST /v1/jobs and `exportd enqueue` use.
    errors.extend(
        FieldError(name, why) for name, why in problems(NewJob(owner or "-", kind_name or "-"))
    )
    params = _params(body.get("params"), kind, errors)
    fmt = _format(body.get("format"), list(formats_for(kind)), errors, None)
    options = _options(body.get("options"), kind, errors, zones)
    spec = _cron(body.get("cron"), body.get("timezone", DEFAULT_TIMEZONE), errors)
    enabled = _enabled(body.get("enabled"), True, errors)
    if errors:
        raise RequestInvalid(errors)
    assert owner is not None
    assert kind_name is not None
    assert spec is not None
    return ScheduleRequest(
        owner,
        kind_name,
        params,
        fmt,
        options,
        str(body["cron"]),
        str(body.get("timezone", DEFAULT_TIMEZONE)),
        enabled,
        spec,
    )


def parse_schedule_patch(
    body: object,
    row: Mapping[str, Any],
    definitions: Definitions,
    formats_for: Callable[[Kind | None], Sequence[str]],
    zones: Container[str] | None = None,
) -> ScheduleRequest:
    """``PATCH /v1/schedules/{id}``: the schedule ``row`` with ``body``'s changes
    (params, format, options, cron, timezone, enabled), every check passed, or
    RequestInvalid listing every problem. Changed params and formats are checked
    against the schedule's kind; the owner and the kind never change."""
    if not isinstance(body, dict):
        raise RequestInvalid([FieldError("", "the body must be a JSON object")])
    errors = _unknown(body, _PATCH_FIELDS)
    kind = definitions.get(row["kind"])
    params = dict(json.loads(row["params"])) if isinstance(row["params"], str) else row["params"]
    if "params" in body:
        params = _params(body["params"], kind, errors)
    fmt = row["format"]
    if body.get("format") is not None:
        fmt = _format(body["format"], list(formats_for(kind)), errors, row["format"])
    options = row["options"]
    if "options" in body:
        options = _options(body["options"], kind, errors, zones)
    cron_text = body.get("cron", row["cron"])
    zone = body.get("timezone", row["timezone"])
    enabled = _enabled(body.get("enabled"), bool(row["enabled"]), errors)
    # A schedule that stays or becomes disabled with its cron expression and
    # zone untouched never needs them read: a row the application inserted
    # with an expression or zone the daemon cannot read can still be turned
    # off (and its other fields changed) without first guessing a fix.
    keeps_schedule = "cron" not in body and "timezone" not in body
    spec = None if keeps_schedule and not enabled else _cron(cron_text, zone, errors)
    if errors:
        raise RequestInvalid(errors)
    return ScheduleRequest(
        row["owner"], row["kind"], params, fmt, options, cron_text, zone, enabled, spec
    )


@dataclass(frozen=True)
class ScheduleListQuery:
    owner: str
    limit: int
    cursor: Cursor | None


_LIST_PARAMS = frozenset({"owner", "limit", "cursor", "owner_scope"})


def parse_schedule_list_query(
    multi: Mapping[str, Sequence[str]], scope: str | None
) -> ScheduleListQuery:
    """``GET /v1/schedules``: the owner (or the request's scope), the page size and
    the cursor; RequestInvalid listing every problem."""
    errors = [
        FieldError(_shown(name), f"unknown parameter; allowed: {', '.join(sorted(_LIST_PARAMS))}")
        for name in sorted(set(multi) - _LIST_PARAMS)
    ]
    owner = owner_param(multi, scope, errors)
    limit, cursor = page_params(multi, errors)
    if errors:
        raise RequestInvalid(errors)
    assert owner is not None
    return ScheduleListQuery(owner, limit, cursor)


def parse_schedule_id(raw: str) -> uuid.UUID | None:
    """The schedule id in a path, or None: a malformed id is an unknown id."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None
