"""``GET /v1/workers``: the daemons alive now, each with the jobs it runs.

An operator's view: it names every owner's running jobs, so a request with
an owner scope is refused (403), as pausing is (``exportd.api.pauses``). A
daemon is alive while its row's heartbeat is recent (``exportd.queue.workers``);
a daemon that died is left out at once its heartbeats stop, and its jobs wait
for the reaper.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exportd.api.context import CONTEXT
from exportd.api.middleware import ApiError
from exportd.api.query_params import owner_scope
from exportd.api.requests import FieldError, RequestInvalid
from exportd.api.routes import OWNER_HEADER
from exportd.api.views import timestamp
from exportd.queue.workers import JobProgress, WorkerStatus


def progress_document(job: JobProgress) -> dict[str, Any]:
    """A running job as ``GET /v1/workers`` shows it (the ``RunningJob`` schema)."""
    return {
        "id": str(job.id),
        "owner": job.owner,
        "kind": job.kind,
        "worker_id": job.worker_id,
        "progress": job.progress,
        "rows_written": job.rows_written,
        "bytes_written": job.bytes_written,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "started_at": None if job.started_at is None else timestamp(job.started_at),
        "lease_expires_at": timestamp(job.lease_expires_at),
    }


def worker_document(worker: WorkerStatus) -> dict[str, Any]:
    """A daemon alive as ``GET /v1/workers`` shows it (the ``Worker`` schema)."""
    return {
        "worker_id": worker.worker_id,
        "version": worker.version,
        "host": worker.host,
        "pid": worker.pid,
        "started_at": timestamp(worker.started_at),
        "concurrency": worker.concurrency,
        "heartbeat_seconds": worker.heartbeat_seconds,
        "last_heartbeat_at": timestamp(worker.last_heartbeat_at),
        "running": [progress_document(j) for j in worker.running],
    }


async def list_workers(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    scope = owner_scope(
        request.headers.getall(OWNER_HEADER, []), request.query.getall("owner_scope", [])
    )
    if scope is not None:
        raise ApiError(
            403,
            "forbidden",
            "the daemons and the jobs they run are an operator's view: send the request "
            "without an owner scope (X-Exportd-Owner, owner_scope)",
        )
    unknown = sorted(set(request.query) - {"owner_scope"})
    if unknown:
        raise RequestInvalid(
            [FieldError(name[:64], "unknown parameter; this route takes none") for name in unknown]
        )
    found = await ctx.queue.workers()
    return web.json_response({"workers": [worker_document(w) for w in found]})


def add_worker_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/workers", list_workers)
