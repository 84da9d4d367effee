"""The dashboard's pages: the overview, the jobs list, one job, the schedules.

Every figure comes from the queue's interface (``PgJobStore``), as the API's
do: the overview in one snapshot (``queue.overview``), the jobs list by the
API's keyset query, running jobs' progress by the one statement that reads
them all. An owner-scoped session sees its owner's jobs and schedules only,
and no overview (which counts every owner's).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from exportd.api.context import CONTEXT, ApiContext
from exportd.api.query_params import Cursor, page_params
from exportd.api.requests import FieldError, parse_job_id
from exportd.queue.job import STATES
from exportd.queue.overview import Overview
from exportd.queue.pauses import ALL_KINDS
from exportd.queue.workers import JobProgress
from exportd.ui import charts
from exportd.ui.filters import ERROR_KINDS, parse_filter
from exportd.ui.present import Pace, pace
from exportd.ui.render import render, session_of


def _scope(request: web.Request) -> str | None:
    session = session_of(request)
    return None if session is None else session.owner


def _now() -> datetime:
    return datetime.now(UTC)


def paces(running: list[JobProgress], now: datetime) -> list[tuple[JobProgress, Pace]]:
    """Each running job with its progress as shown."""
    return [
        (j, pace(j.progress, j.rows_written, j.bytes_written, j.started_at, now)) for j in running
    ]


def _kinds_table(ctx: ApiContext, view: Overview) -> list[dict[str, Any]]:
    """One row per kind the daemon knows or the queue holds: counts by state,
    pending readiness, durations and its pause."""
    paused = {p.kind: p for p in view.paused}
    every = paused.get(ALL_KINDS)
    durations = {d.kind: d for d in view.durations}
    pending = {p.kind: p for p in view.pending}
    names = sorted({*ctx.definitions.names(), *(c.kind for c in view.counts)})
    return [
        {
            "name": name,
            "known": name in ctx.definitions,
            "counts": {state: view.count(state, name) for state in STATES},
            "pending": pending.get(name),
            "durations": durations.get(name),
            # Its own pause (which the page can lift), else the pause of every kind.
            "own_pause": paused.get(name),
            "pause": paused.get(name) or every,
        }
        for name in names
    ]


async def overview(request: web.Request) -> web.Response:
    if _scope(request) is not None:
        raise web.HTTPSeeOther("/ui/jobs")
    ctx = request.app[CONTEXT]
    view = await ctx.queue.overview()
    now = view.as_of
    minutes = [
        (int((now - m.minute).total_seconds() // 60), m.completed, m.failed) for m in view.minutes
    ]
    return render(
        request,
        "overview.html",
        view=view,
        states=STATES,
        kinds=_kinds_table(ctx, view),
        chart=charts.per_minute(minutes),
        breaker=ctx.breaker(),
        this_worker=ctx.worker_id,
        running=paces(list(view.running), now),
        every_kind_pause=next((p for p in view.paused if p.kind == ALL_KINDS), None),
    )


async def jobs(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = _scope(request)
    multi = {key: request.query.getall(key) for key in request.query}
    wanted, problems = parse_filter(multi, scope)
    cursor = wanted.cursor
    rows = await ctx.queue.list_jobs(
        wanted.owner,
        states=None if wanted.state is None else [wanted.state],
        kinds=None if wanted.kind is None else [wanted.kind],
        error_kinds=None if wanted.error_kind is None else [wanted.error_kind],
        # The page's "since" includes its bound; the query's bounds exclude theirs.
        created_after=None if wanted.since is None else _just_before(wanted.since),
        created_before=wanted.until,
        after=(cursor.created_at, cursor.id) if cursor else None,
        limit=wanted.limit + 1,
    )
    page, more = rows[: wanted.limit], len(rows) > wanted.limit
    next_query = (
        wanted.query(cursor=Cursor(page[-1]["created_at"], page[-1]["id"])) if more else None
    )
    running = {j.id: j for j in await ctx.queue.running_jobs()} if page else {}
    now = _now()
    shown = [
        (row, _pace_of(running.get(row["id"]), now) if row["state"] == "processing" else None)
        for row in page
    ]
    return render(
        request,
        "jobs.html",
        filter=wanted,
        problems=problems,
        jobs=shown,
        next_query=next_query,
        first_query=wanted.query(cursor=None) if cursor else None,
        states=STATES,
        error_kinds=ERROR_KINDS,
        kinds=sorted(ctx.definitions.names()),
    )


def _just_before(moment: datetime) -> datetime:
    return moment - timedelta(microseconds=1)


def _pace_of(job: JobProgress | None, now: datetime) -> Pace:
    if job is None:
        return pace(0, 0, 0, None, now)
    return pace(job.progress, job.rows_written, job.bytes_written, job.started_at, now)


async def visible_job(request: web.Request) -> Any:
    """The job of the path as this session may see it; 404 for an unknown,
    malformed or other owner's id (told apart by nothing)."""
    ctx = request.app[CONTEXT]
    raw = request.match_info["id"]
    job_id = parse_job_id(raw)
    row = None if job_id is None else await ctx.queue.job(job_id)
    scope = _scope(request)
    if row is None or (scope is not None and row["owner"] != scope):
        raise web.HTTPNotFound(text="No such job (or not one this session may see).")
    return row


async def job(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    row = await visible_job(request)
    job_id: uuid.UUID = row["id"]
    attempts = await ctx.queue.attempts(job_id)
    deliveries = await ctx.queue.deliveries(job_id)
    schedule = None
    if row["schedule_id"] is not None:
        schedule = await ctx.queue.schedules.get(row["schedule_id"])
    now = _now()
    current = pace(
        row["progress"], row["rows_written"], row["bytes_written"], row["started_at"], now
    )
    return render(
        request,
        "job.html",
        job=row,
        attempts=attempts,
        deliveries=deliveries,
        schedule=schedule,
        pace=current,
    )


async def schedules(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    multi = {key: request.query.getall(key) for key in request.query}
    errors: list[FieldError] = []
    limit, cursor = page_params(multi, errors)
    if errors:
        limit, cursor = 50, None
    rows = await ctx.queue.schedules.list(
        _scope(request), after=(cursor.created_at, cursor.id) if cursor else None, limit=limit + 1
    )
    page, more = rows[:limit], len(rows) > limit
    last = await ctx.queue.schedules.last_jobs(page)
    return render(
        request,
        "schedules.html",
        schedules=[(s, last.get(s["last_job_id"])) for s in page],
        next_cursor=Cursor(page[-1]["created_at"], page[-1]["id"]).encode() if more else None,
    )
