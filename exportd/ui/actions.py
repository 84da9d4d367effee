"""The dashboard's actions: cancel, retry or delete a job; pause or resume a kind;
and a download link made on click.

Each action is two steps: a GET shows what will happen and a form to confirm
it; the form POSTs with its session's CSRF token (checked in ``auth``). The
server refuses a read-only session (403) whatever the page showed, and an
owner-scoped session acts on its owner's jobs only and pauses no kind. Each
action goes through the same code as the API's (``api.routes.cancel_or_delete``,
``PgJobStore.requeue``, ``pause_kind``), and is logged (``ui_action``) with
the token that did it, by fingerprint, never the token itself.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from exportd import limits
from exportd.api.context import CONTEXT
from exportd.api.middleware import ApiError
from exportd.api.routes import _presented, cancel_or_delete
from exportd.queue.pauses import ALL_KINDS, PauseRefused
from exportd.queue.requeue import RetryRefused
from exportd.ui.auth import require_admin
from exportd.ui.pages import visible_job
from exportd.ui.render import render, session_of
from exportd.ui.sessions import Session

_log = structlog.get_logger("exportd.ui")

_JOB_VERBS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    # verb: (question, consequence, button, the states it applies to)
    "cancel": (
        "Cancel this job?",
        "A pending job will not run; a running export stops and its upload is aborted.",
        "Cancel the job",
        ("pending", "processing"),
    ),
    "retry": (
        "Run this job again?",
        "It goes back to pending with its attempts reset; its earlier attempts stay listed.",
        "Retry the job",
        ("failed", "cancelled"),
    ),
    "delete": (
        "Delete this export?",
        "Its object is deleted from the bucket now, and the job becomes expired.",
        "Delete the export",
        ("completed",),
    ),
}


def _who(session: Session) -> dict[str, Any]:
    """What a log line says of who acted: the token's fingerprint and role."""
    return {"by": f"ui:{session.fingerprint}", "role": session.role, "owner_scope": session.owner}


def _session(request: web.Request) -> Session:
    require_admin(request)
    session = session_of(request)
    assert session is not None  # require_admin refused otherwise
    return session


def _verb(request: web.Request, verbs: Any) -> str:
    verb = request.match_info["verb"]
    if verb not in verbs:
        raise web.HTTPNotFound(text="No such action.")
    return verb


async def confirm_job(request: web.Request) -> web.Response:
    _session(request)
    verb = _verb(request, _JOB_VERBS)
    row = await visible_job(request)
    question, consequence, button, states = _JOB_VERBS[verb]
    if row["state"] not in states:
        raise web.HTTPConflict(text=f"This job is {row['state']}: it cannot be {verb}ed now.")
    return render(
        request,
        "confirm.html",
        question=question,
        consequence=consequence,
        button=button,
        action=f"/ui/jobs/{row['id']}/{verb}",
        back=f"/ui/jobs/{row['id']}",
        reason=False,
        facts=[
            ("Job", str(row["id"])),
            ("Owner", row["owner"]),
            ("Kind", row["kind"]),
            ("State", row["state"]),
        ],
    )


async def act_on_job(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session = _session(request)
    verb = _verb(request, _JOB_VERBS)
    row = await visible_job(request)
    try:
        if verb == "retry":
            after = await ctx.queue.requeue(row["id"], session.owner)
            if after is None:
                raise web.HTTPNotFound(text="No such job (or not one this session may see).")
        else:
            _, after = await cancel_or_delete(ctx, row["id"], session.owner, _JOB_VERBS[verb][3])
    except RetryRefused as refused:
        raise web.HTTPConflict(text=refused.message) from None
    except ApiError as error:
        if error.status != 409:
            raise
        raise web.HTTPConflict(text=error.message) from None
    _log.info(
        "ui_action",
        action=verb,
        job_id=str(after["id"]),
        job_owner=after["owner"],
        kind=after["kind"],
        state=after["state"],
        **_who(session),
    )
    raise web.HTTPSeeOther(f"/ui/jobs/{after['id']}")


def _kind(request: web.Request, session: Session) -> str:
    ctx = request.app[CONTEXT]
    if session.owner is not None:
        raise web.HTTPForbidden(
            text="Pausing a kind stops every owner's jobs: this session acts for one owner."
        )
    kind = request.match_info["kind"]
    if kind != ALL_KINDS and kind not in ctx.definitions:
        raise web.HTTPNotFound(text="This daemon has no such kind.")
    return kind


def _named(kind: str) -> str:
    return "every kind" if kind == ALL_KINDS else f"the kind {kind}"


async def confirm_kind(request: web.Request) -> web.Response:
    session = _session(request)
    verb = _verb(request, ("pause", "resume"))
    kind = _kind(request, session)
    pausing = verb == "pause"
    return render(
        request,
        "confirm.html",
        question=f"{'Pause' if pausing else 'Resume'} {_named(kind)}?",
        consequence=(
            "No daemon claims its pending jobs until it is resumed; running jobs finish."
            if pausing
            else "Its pending jobs are claimed again (a kind paused on its own stays paused)."
        ),
        button=f"{'Pause' if pausing else 'Resume'} {_named(kind)}",
        action=request.path,
        back="/ui/",
        reason=pausing,
        facts=[("Kind", kind)],
    )


async def act_on_kind(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session = _session(request)
    verb = _verb(request, ("pause", "resume"))
    kind = _kind(request, session)
    by = f"ui:{session.fingerprint}"
    if verb == "pause":
        form = await request.post()
        raw = form.get("reason")
        reason = raw.strip() if isinstance(raw, str) and raw.strip() else None
        if reason is not None and (
            problem := limits.identifier_problem(reason, limits.PAUSE_REASON_MAX_BYTES)
        ):
            raise web.HTTPBadRequest(text=f"The reason {problem}.")
        try:
            await ctx.queue.pause_kind(kind, paused_by=by, reason=reason)
        except PauseRefused as refused:
            raise web.HTTPBadRequest(text=str(refused)) from None
    else:
        await ctx.queue.resume_kind(kind, resumed_by=by)
    _log.info("ui_action", action=verb, kind=kind, **_who(session))
    raise web.HTTPSeeOther("/ui/")


async def download(request: web.Request) -> web.Response:
    """A page with a presigned URL made now, never stored; any session that sees the
    job may download it, as any API token may. A page, not a redirect: the
    policy's ``form-action 'self'`` stops a form's redirect to the bucket."""
    ctx = request.app[CONTEXT]
    session = session_of(request)
    assert session is not None
    row = await visible_job(request)
    doc = await _presented(ctx, row)
    url = doc.get("download_url")
    if url is None:
        raise web.HTTPGone(text=f"This job is {row['state']}: it has no file to download.")
    _log.info("ui_download", job_id=str(row["id"]), job_owner=row["owner"], **_who(session))
    return render(
        request,
        "download.html",
        job=row,
        url=url,
        expires=doc.get("download_url_expires_at"),
    )
