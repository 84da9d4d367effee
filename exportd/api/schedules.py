"""The /v1/schedules routes: recurring exports (list, create, read, change, delete).

Owner-scoped as the job routes are: under ``X-Exportd-Owner`` (or
``owner_scope=``) another owner's schedule is answered exactly as an unknown
one (404). A schedule's ``next_run_at`` is computed here from its cron
expression in its time zone (``exportd.queue.cron``), on creation and
whenever its cron expression or time zone changes, or it is enabled again.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web

from exportd.api.context import CONTEXT
from exportd.api.job_documents import wants_zone
from exportd.api.middleware import ApiError
from exportd.api.query_params import Cursor, owner_scope
from exportd.api.requests import FieldError, RequestInvalid, parse_json_body
from exportd.api.routes import formats_for
from exportd.api.schedule_requests import (
    ScheduleRequest,
    parse_new_schedule,
    parse_schedule_id,
    parse_schedule_list_query,
    parse_schedule_patch,
)
from exportd.api.views import job_document
from exportd.queue import cron
from exportd.queue.schedules import NewSchedule, ScheduleRefused

OWNER_HEADER = "X-Exportd-Owner"


def schedule_document(row: Any) -> dict[str, Any]:
    """A schedule row as callers see it: JSON-ready, every column."""
    return job_document(row)


def new_schedule(request: ScheduleRequest, next_run_at: datetime) -> NewSchedule:
    """The row to write for ``request``, first due at ``next_run_at``."""
    return NewSchedule(
        request.owner,
        request.kind,
        request.params,
        request.format,
        request.options,
        request.cron,
        request.timezone,
        request.enabled,
        next_run_at,
    )


def _scope(request: web.Request) -> str | None:
    return owner_scope(
        request.headers.getall(OWNER_HEADER, []), request.query.getall("owner_scope", [])
    )


def _not_found(raw: str) -> ApiError:
    shown = raw if len(raw) <= 64 else f"{raw[:64]}..."
    return ApiError(404, "not_found", f"no schedule {shown!r}")


def _schedule_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["id"]
    schedule_id = parse_schedule_id(raw)
    if schedule_id is None:
        raise _not_found(raw)
    return schedule_id


def _refused(exc: ScheduleRefused) -> RequestInvalid:
    # The checks mirror the table's; a value that passes them and not the table
    # is the caller's input all the same: 400 naming the constraint, not 500.
    cause = exc.cause
    return RequestInvalid(
        [FieldError("", f"the table refused the schedule: {cause.__class__.__name__}: {cause}")]
    )


async def list_schedules(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    multi = {key: request.query.getall(key) for key in request.query}
    q = parse_schedule_list_query(multi, _scope(request))
    after = (q.cursor.created_at, q.cursor.id) if q.cursor else None
    rows = await ctx.queue.schedules.list(q.owner, after=after, limit=q.limit + 1)
    page, more = rows[: q.limit], len(rows) > q.limit
    next_cursor = Cursor(page[-1]["created_at"], page[-1]["id"]).encode() if more else None
    return web.json_response(
        {"schedules": [schedule_document(r) for r in page], "next_cursor": next_cursor}
    )


async def create_schedule(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    body = parse_json_body(await request.read())
    zones = await ctx.queue.zones.names() if wants_zone(body) else None
    wanted = parse_new_schedule(body, ctx.definitions, formats_for, _scope(request), zones)
    assert wanted.spec is not None  # a new schedule's cron is always read
    first = cron.next_after(wanted.spec, await ctx.queue.schedules.clock())
    try:
        row = await ctx.queue.schedules.create(new_schedule(wanted, first))
    except ScheduleRefused as exc:
        raise _refused(exc) from None
    response = web.json_response(schedule_document(row), status=201)
    response.headers["Location"] = f"/v1/schedules/{row['id']}"
    return response


async def get_schedule(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = _scope(request)
    schedule_id = _schedule_id(request)
    row = await ctx.queue.schedules.get(schedule_id)
    if row is None or (scope is not None and row["owner"] != scope):
        raise _not_found(str(schedule_id))
    return web.json_response(schedule_document(row))


async def patch_schedule(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = _scope(request)
    schedule_id = _schedule_id(request)
    body = parse_json_body(await request.read())
    zones = await ctx.queue.zones.names() if wants_zone(body) else None
    async with ctx.queue.schedules.locked(schedule_id) as locked:
        row = locked.row
        if row is None or (scope is not None and row["owner"] != scope):
            raise _not_found(str(schedule_id))
        changed = parse_schedule_patch(body, row, ctx.definitions, formats_for, zones)
        next_run_at = row["next_run_at"]
        # A new cron expression or zone, or a schedule enabled again, starts
        # from its next occurrence: the time it was off is not caught up.
        # A schedule disabled with its cron and zone untouched (spec None) keeps
        # its next run: it is not due while disabled.
        if changed.spec is not None and (
            (changed.cron, changed.timezone) != (row["cron"], row["timezone"])
            or (changed.enabled and not row["enabled"])
            or next_run_at is None
        ):
            next_run_at = cron.next_after(changed.spec, await locked.clock())
        try:
            updated = await locked.update(new_schedule(changed, next_run_at))
        except ScheduleRefused as exc:
            raise _refused(exc) from None
    return web.json_response(schedule_document(updated))


async def delete_schedule(request: web.Request) -> web.Response:
    """Delete a schedule; the jobs it made stay, with their schedule_id."""
    ctx = request.app[CONTEXT]
    schedule_id = _schedule_id(request)
    if not await ctx.queue.schedules.delete(schedule_id, _scope(request)):
        raise _not_found(str(schedule_id))
    return web.Response(status=204)


def add_schedule_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/schedules", list_schedules)
    router.add_post("/v1/schedules", create_schedule)
    router.add_get("/v1/schedules/{id}", get_schedule)
    router.add_patch("/v1/schedules/{id}", patch_schedule)
    router.add_delete("/v1/schedules/{id}", delete_schedule)
