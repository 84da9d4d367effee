"""``GET /ui/live``: the progress of every running job, polled by the pages.

One statement reads every processing job (``PgJobStore.running_jobs``),
whatever the number of jobs on the page or of pages open; an owner-scoped
session gets its owner's only. Answers JSON:
``{"as_of": ISO time, "running": {job id: progress}}``, each progress as
``present.pace_document`` gives it (numbers, and the text the page shows).
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from exportd.api.context import CONTEXT
from exportd.ui.present import pace, pace_document
from exportd.ui.render import session_of


async def live(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    session = session_of(request)
    scope = None if session is None else session.owner
    now = datetime.now(UTC)
    running = {
        str(j.id): pace_document(
            pace(j.progress, j.rows_written, j.bytes_written, j.started_at, now)
        )
        for j in await ctx.queue.running_jobs()
        if scope is None or j.owner == scope
    }
    return web.json_response(
        {"as_of": now.isoformat(), "running": running}, headers={"Cache-Control": "no-store"}
    )
