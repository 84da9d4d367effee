"""Operator actions on one job: ``POST /v1/jobs/{id}/retry`` and ``/cancel``.

A ``failed`` or ``cancelled`` job goes back to ``pending``, to run now with
its attempts reset and its ``max_attempts`` unchanged; every earlier attempt
stays in the job's ``runs``. ``/cancel`` stops a pending or processing job and
nothing else: unlike ``DELETE /v1/jobs/{id}``, which also deletes a completed
export, it can never remove a file because the job finished a moment before
the request. The owner scope applies as on every job route: another owner's
job is answered 404, exactly as an unknown one.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from exportd.api.context import CONTEXT
from exportd.api.middleware import ApiError
from exportd.api.routes import _job_id, _location, _not_found, _scope, cancel_or_delete
from exportd.api.views import job_document, runs_document
from exportd.queue.requeue import LiveDuplicate, RetryRefused

_log = structlog.get_logger("exportd.api")

# The error code of each refusal (RetryRefused.reason): a stable word a caller
# may branch on.
_CODES = {
    "state": "not_retryable",
    "duplicate": "duplicate",
    "refused": "not_retryable",
    "busy": "busy",
}


def _refusal(refused: RetryRefused) -> ApiError:
    extra: dict[str, Any] = {"job": job_document(refused.row), "state": refused.row["state"]}
    if isinstance(refused, LiveDuplicate) and refused.duplicate is not None:
        extra["duplicate_id"] = str(refused.duplicate["id"])
    return ApiError(409, _CODES.get(refused.reason, "conflict"), refused.message, **extra)


async def retry_job(request: web.Request) -> web.Response:
    """Run a failed or cancelled job again: 202 with the job (pending) and its
    runs; 404 unknown; 409 in any other state or while its dedupe_key has a
    live job."""
    ctx = request.app[CONTEXT]
    scope = _scope(request)
    job_id = _job_id(request)
    try:
        row = await ctx.queue.requeue(job_id, scope)
    except RetryRefused as refused:
        raise _refusal(refused) from None
    if row is None:
        raise _not_found(str(job_id))
    # Who asked: the request id is bound to every line of the request; the
    # scope and the peer say which caller it was (no token is ever logged).
    _log.info(
        "job_retried",
        job_id=str(row["id"]),
        owner=row["owner"],
        kind=row["kind"],
        max_attempts=row["max_attempts"],
        by="api",
        owner_scope=scope,
        remote=request.remote,
    )
    doc = job_document(row)
    doc["runs"] = runs_document(await ctx.queue.attempts(row["id"]))
    response = web.json_response(doc, status=202)
    response.headers["Location"] = _location(row["id"])
    return response


async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a pending or processing job: 200 with the job (cancelled); 404
    unknown; 409 ``not_cancellable`` in any other state, with the job as it is.
    A processing job's worker sees the cancel at its next heartbeat, stops and
    aborts its upload."""
    scope = _scope(request)
    state, row = await cancel_or_delete(
        request.app[CONTEXT],
        _job_id(request),
        scope,
        states=("pending", "processing"),
        refusal="not_cancellable",
    )
    _log.info(
        "job_cancelled",
        job_id=str(row["id"]),
        owner=row["owner"],
        kind=row["kind"],
        was=state,
        by="api",
        owner_scope=scope,
        remote=request.remote,
    )
    return web.json_response(job_document(row))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/v1/jobs/{id}/retry", retry_job)
    router.add_post("/v1/jobs/{id}/cancel", cancel_job)
