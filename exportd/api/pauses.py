"""Pausing and resuming kinds: ``POST /v1/kinds/{kind}/pause`` and ``/resume``, and
``POST /v1/kinds/pause`` and ``/resume`` for every kind at once.

A paused kind's pending jobs are claimed by no daemon until it is resumed
(``exportd.queue.pauses``); running jobs finish. Pausing is an operator's act:
a request with an owner scope is refused (403), whatever the kind. Both verbs
are idempotent, and answer 200 with the state after the request. The API has
no caller identity beyond its bearer tokens, which are secrets: a pause made
here is recorded and logged as paused by "api", with the request's id.
"""

from __future__ import annotations

from aiohttp import web

from exportd import limits
from exportd.api.context import CONTEXT, ApiContext
from exportd.api.middleware import ApiError
from exportd.api.query_params import owner_scope
from exportd.api.requests import FieldError, RequestInvalid, parse_json_body
from exportd.api.routes import OWNER_HEADER
from exportd.api.views import kind_pause_document, pause_fields
from exportd.queue.pauses import ALL_KINDS, PauseRefused, state_of

PAUSED_BY = "api"


def _operator_only(request: web.Request) -> None:
    """403 for a request with an owner scope: it acts for one owner, and a pause
    stops every owner's jobs."""
    scope = owner_scope(
        request.headers.getall(OWNER_HEADER, []), request.query.getall("owner_scope", [])
    )
    if scope is not None:
        raise ApiError(
            403,
            "forbidden",
            "pausing and resuming kinds is an operator's act: send the request "
            "without an owner scope (X-Exportd-Owner, owner_scope)",
        )


def _known_kind(ctx: ApiContext, request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in ctx.definitions:
        # The path is the caller's: echoed only as long as a kind name can be.
        shown = kind if len(kind) <= 64 else f"{kind[:64]}..."
        known = ", ".join(ctx.definitions.names()) or "none"
        raise ApiError(404, "not_found", f"no kind {shown!r} (this daemon's kinds: {known})")
    return kind


async def _reason(request: web.Request) -> str | None:
    """The body's optional ``reason``: no body, ``{}`` or ``{"reason": null}`` is none."""
    raw = await request.read()
    if not raw.strip():
        return None
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        raise RequestInvalid([FieldError("", 'the body must be a JSON object: {"reason": "..."}')])
    errors = [FieldError(key, "is not a field of a pause") for key in body if key != "reason"]
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        errors.append(FieldError("reason", "must be a string"))
    elif reason is not None and (
        problem := limits.identifier_problem(reason, limits.PAUSE_REASON_MAX_BYTES)
    ):
        errors.append(FieldError("reason", problem))
    if errors:
        raise RequestInvalid(errors)
    return reason


async def _kind_answer(ctx: ApiContext, kind: str) -> web.Response:
    return web.json_response(kind_pause_document(state_of(kind, await ctx.queue.paused_kinds())))


async def _all_answer(ctx: ApiContext) -> web.Response:
    pauses = await ctx.queue.paused_kinds()
    every = state_of(ALL_KINDS, pauses).own
    return web.json_response(
        {
            "paused": every is not None,
            **pause_fields(every),
            "kinds": [kind_pause_document(state_of(k, pauses)) for k in ctx.definitions],
        }
    )


async def _pause(ctx: ApiContext, kind: str, reason: str | None) -> None:
    try:
        await ctx.queue.pause_kind(kind, paused_by=PAUSED_BY, reason=reason)
    except PauseRefused as refused:  # the checks above mirror the table's
        raise RequestInvalid([FieldError("", str(refused))]) from None


async def pause_kind(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    _operator_only(request)
    kind = _known_kind(ctx, request)
    await _pause(ctx, kind, await _reason(request))
    return await _kind_answer(ctx, kind)


async def resume_kind(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    _operator_only(request)
    kind = _known_kind(ctx, request)
    await ctx.queue.resume_kind(kind, resumed_by=PAUSED_BY)
    return await _kind_answer(ctx, kind)


async def pause_all(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    _operator_only(request)
    await _pause(ctx, ALL_KINDS, await _reason(request))
    return await _all_answer(ctx)


async def resume_all(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    _operator_only(request)
    await ctx.queue.resume_all_kinds(resumed_by=PAUSED_BY)
    return await _all_answer(ctx)


def add_pause_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/v1/kinds/pause", pause_all)
    router.add_post("/v1/kinds/resume", resume_all)
    router.add_post("/v1/kinds/{kind}/pause", pause_kind)
    router.add_post("/v1/kinds/{kind}/resume", resume_kind)
