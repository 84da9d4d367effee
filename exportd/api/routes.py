"""The /v1 routes: jobs (list, read, enqueue, cancel or delete, download) and kinds
(pausing and resuming kinds: ``exportd.api.pauses``).

Owner scope: a request carrying ``X-Exportd-Owner`` (or ``owner_scope=``) acts
for that owner alone. Another owner's job is answered exactly as an unknown
one (404, same message shape), so job ids cannot be probed across owners.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Container
from datetime import timedelta
from typing import Any

from aiohttp import web

from exportd.api.context import CONTEXT, ApiContext
from exportd.api.job_documents import wants_zone
from exportd.api.middleware import ApiError, error_response
from exportd.api.query_params import Cursor, ListQuery, owner_scope, parse_list_query
from exportd.api.request_spans import trace_context_of
from exportd.api.requests import (
    FieldError,
    RequestInvalid,
    parse_job_id,
    parse_json_body,
    parse_new_job,
)
from exportd.api.views import (
    job_document,
    kind_listing_fields,
    runs_document,
    with_deliveries,
    with_download,
)
from exportd.definitions.kinds import Kind
from exportd.definitions.offered_formats import formats_of, installed_formats
from exportd.definitions.options.resolve import to_document
from exportd.queue.enqueue import DuplicateBusy, JobRefused, NewJob, QuotaExceeded
from exportd.queue.pauses import state_of
from exportd.quotas import iso_utc, refusal_message
from exportd.s3.objects import delete_object
from exportd.s3.presign import download_signer, open_presigner

OWNER_HEADER = "X-Exportd-Owner"
# Deleting an export's object is one request, made while the job's row is
# locked and a caller waits: S3 that takes longer is down.
_DELETE_SECONDS = 10.0


def formats_for(kind: Kind | None) -> tuple[str, ...]:
    """The formats a job of ``kind`` may ask for (of any kind: None)."""
    return installed_formats() if kind is None else formats_of(kind)


def _scope(request: web.Request) -> str | None:
    return owner_scope(
        request.headers.getall(OWNER_HEADER, []), request.query.getall("owner_scope", [])
    )


def _not_found(raw: str) -> ApiError:
    # The path is the caller's: echoed only as long as an id can be.
    shown = raw if len(raw) <= 64 else f"{raw[:64]}..."
    return ApiError(404, "not_found", f"no job {shown!r}")


def _job_id(request: web.Request) -> uuid.UUID:
    raw = request.match_info["id"]
    job_id = parse_job_id(raw)
    if job_id is None:
        # Malformed ids are unknown ids: nothing to tell a prober apart.
        raise _not_found(raw)
    return job_id


def _visible(row: Any, scope: str | None) -> bool:
    return row is not None and (scope is None or row["owner"] == scope)


def _location(job_id: object) -> str:
    return f"/v1/jobs/{job_id}"


async def _presented(ctx: ApiContext, row: Any) -> dict[str, Any]:
    """The job's document, with a download URL when it has one to download."""

    async def sign(key: str, filename: str, lifetime: timedelta) -> str:
        # Made on first use: a daemon may start without credentials (readiness
        # says so), and only a download needs them.
        if ctx.presigner is None:
            ctx.presigner = await open_presigner(ctx.settings, ctx.s3)
        return await download_signer(ctx.presigner)(key, filename, lifetime)

    return await with_download(job_document(row), sign, ctx.settings.download_url_ttl)


async def _visible_job(request: web.Request) -> tuple[ApiContext, Any]:
    """The job of the path, or 404 when unknown, malformed or outside the owner scope."""
    ctx = request.app[CONTEXT]
    scope = _scope(request)
    job_id = _job_id(request)
    row = await ctx.queue.job(job_id)
    if not _visible(row, scope):
        raise _not_found(str(job_id))
    return ctx, row


async def get_job(request: web.Request) -> web.Response:
    ctx, row = await _visible_job(request)
    doc = with_deliveries(await _presented(ctx, row), await ctx.queue.deliveries(row["id"]))
    # Each ended attempt (exportd.queue.requeue): a retried job keeps them all.
    doc["runs"] = runs_document(await ctx.queue.attempts(row["id"]))
    return web.json_response(doc)


async def list_jobs(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    multi = {key: request.query.getall(key) for key in request.query}
    q: ListQuery = parse_list_query(multi, _scope(request))
    cursor = q.cursor
    rows = await ctx.queue.list_jobs(
        q.owner,
        states=q.states,
        kinds=q.kinds,
        created_after=q.created_after,
        created_before=q.created_before,
        after=(cursor.created_at, cursor.id) if cursor else None,
        limit=q.limit + 1,
        error_kinds=q.error_kinds,
    )
    page, more = rows[: q.limit], len(rows) > q.limit
    next_cursor = Cursor(page[-1]["created_at"], page[-1]["id"]).encode() if more else None
    return web.json_response({"jobs": [job_document(r) for r in page], "next_cursor": next_cursor})


async def _json_body(request: web.Request) -> object:
    # Read whole, within the application's client_max_size (413 beyond it).
    return parse_json_body(await request.read())


async def _insert(ctx: ApiContext, job: NewJob) -> tuple[Any, bool]:
    """The new job's row, or the live duplicate's; and whether it is new.
    Raises QuotaExceeded over the kind's quota."""
    try:
        enqueued = await ctx.queue.enqueue(job, ctx.definitions.quota_of(job.kind))
    except JobRefused as refused:
        # The checks above mirror the table's; should a value still pass
        # them and not the table (a bound counted differently), it is the
        # caller's input all the same: 400 with the constraint, not 500.
        exc = refused.cause
        raise RequestInvalid(
            [FieldError("", f"the queue table refused the job: {exc.__class__.__name__}: {exc}")]
        ) from None
    except DuplicateBusy as busy:
        raise ApiError(503, "busy", str(busy)) from None
    return enqueued.row, enqueued.created


async def create_job(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = _scope(request)
    body = await _json_body(request)
    # The zone names are read (once per process) only for a job that names a zone.
    zones = await ctx.queue.zones.names() if wants_zone(body) else None
    job = parse_new_job(body, ctx.definitions, formats_for, scope, zones)
    # The caller's trace goes on in the job's spans (a malformed header: no trace).
    job = dataclasses.replace(job, trace_context=trace_context_of(request))
    try:
        row, created = await _insert(ctx, job)
    except QuotaExceeded as over:
        return _over_quota(job, over)
    doc = job_document(row)
    if not created:
        raise ApiError(
            409,
            "duplicate",
            f"owner {job.owner!r} already has a live job with dedupe_key {job.dedupe_key!r}",
            job=doc,
        )
    response = web.json_response(doc, status=202)
    response.headers["Location"] = _location(row["id"])
    return response


def _over_quota(job: NewJob, over: QuotaExceeded) -> web.Response:
    """429: the owner has had the kind's quota of jobs in its window; ask again
    at ``retry_at`` (``Retry-After``: whole seconds, rounded up)."""
    response = error_response(
        429,
        "quota_exceeded",
        refusal_message(job.kind, over.quota, over.retry_at),
        retry_at=iso_utc(over.retry_at),
    )
    response.headers["Retry-After"] = str(over.retry_after)
    return response


_CANCEL_OR_DELETE = ("pending", "processing", "completed")


async def cancel_or_delete(
    ctx: ApiContext,
    job_id: uuid.UUID,
    scope: str | None,
    states: Container[str] = _CANCEL_OR_DELETE,
    refusal: str = "conflict",
) -> tuple[str, Any]:
    """Cancel a pending or processing job, or delete a completed export's object:
    the job's state before, and its row after. Only a job in one of ``states``
    is acted on, judged under its row lock (the dashboard's "cancel" never
    deletes a job that completed meanwhile). Raises ApiError: 404 unknown or
    outside ``scope``, 409 ``refusal`` (with ``state`` and ``job``) in any other
    state. The API and the dashboard both act through it."""
    async with ctx.queue.locked_job(job_id) as locked:
        row: Any = locked.row
        if not _visible(row, scope):
            raise _not_found(str(job_id))
        state = row["state"]
        if state not in states or state not in _CANCEL_OR_DELETE:
            raise ApiError(
                409,
                refusal,
                f"job {job_id} is {state}: there is nothing to "
                + ("cancel" if refusal == "not_cancellable" else "cancel or delete"),
                job=job_document(row),
                state=state,
            )
        if state in ("pending", "processing"):
            row = await locked.cancel()
        else:  # completed
            # The object goes first, with the row locked: should S3 fail, the
            # job stays completed and downloadable and the caller retries.
            if row["object_key"]:
                await delete_object(
                    ctx.s3, ctx.settings.bucket(), row["object_key"], seconds=_DELETE_SECONDS
                )
            row = await locked.expire()
    if state == "pending":
        # A running job is counted by the worker that stops it.
        ctx.metrics.jobs_cancelled.labels(row["kind"]).inc()
    return state, row


async def delete_job(request: web.Request) -> web.Response:
    """Cancel a pending or processing job; delete a completed export's object."""
    scope = _scope(request)
    _, row = await cancel_or_delete(request.app[CONTEXT], _job_id(request), scope)
    return web.json_response(job_document(row))


async def download(request: web.Request) -> web.Response:
    ctx, row = await _visible_job(request)
    job_id = row["id"]
    doc = await _presented(ctx, row)
    url = doc.get("download_url")
    if url is not None:
        response = web.json_response(
            {"download_url": url, "download_url_expires_at": doc["download_url_expires_at"]},
            status=302,
        )
        response.headers["Location"] = url
        response.headers["Cache-Control"] = "no-store"
        return response
    state = row["state"]
    if state in ("completed", "expired"):
        raise ApiError(410, "gone", f"the export of job {job_id} has expired and was deleted")
    raise ApiError(
        409,
        "not_completed",
        f"job {job_id} is {state}: only a completed export can be downloaded",
        state=state,
    )


async def list_kinds(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    paused = await ctx.queue.paused_kinds()
    kinds = [
        {
            "name": kind.name,
            "description": kind.description,
            "formats": list(formats_for(kind)),
            "params_schema": kind.json_schema(),
            "options": to_document(kind.options),
            "locked_options": list(kind.locked_options),
            "labels": dict(kind.labels),
            "options_schema": kind.options_schema(),
            "quota": None if kind.quota is None else kind.quota.describe(),
            **kind_listing_fields(state_of(kind.name, paused)),
        }
        for kind in ctx.definitions.values()
    ]
    return web.json_response({"kinds": kinds})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/jobs", list_jobs)
    router.add_post("/v1/jobs", create_job)
    router.add_get("/v1/jobs/{id}", get_job)
    router.add_delete("/v1/jobs/{id}", delete_job)
    router.add_get("/v1/jobs/{id}/download", download)
    router.add_get("/v1/kinds", list_kinds)
