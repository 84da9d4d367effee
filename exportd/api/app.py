"""The HTTP API: health for orchestrators, metrics for Prometheus, jobs for the application.

``/healthz`` says the process and its worker loop live; ``/readyz`` says the
daemon can do work (database and bucket reachable, not draining);
``/metrics`` is the Prometheus exposition. ``/v1/*`` needs a bearer token;
its routes are in ``exportd.api.routes`` and its description, served at
``/v1/openapi.json``, in ``exportd.api.openapi``. Every error is JSON:
``{"error", "message", ...}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from exportd import limits
from exportd.api import job_actions, middleware, pauses, routes, schedules, workers
from exportd.api.context import CONTEXT, ApiContext
from exportd.api.middleware import error_response
from exportd.api.openapi import openapi_document
from exportd.api.request_spans import request_spans
from exportd.errors import ExportError
from exportd.metrics import CONTENT_TYPE
from exportd.queue.stats import QueueStats
from exportd.s3.objects import check_bucket
from exportd.ui import app as ui_app

# Readiness is probed every few seconds by every load balancer and kubelet;
# checking the bucket that often would cost requests and add latency.
_READY_CACHE_SECONDS = 2.0
_CHECK_TIMEOUT = 2.0

QUEUE_STATS = web.AppKey("exportd_queue_stats", QueueStats)
OPENAPI = web.AppKey("exportd_openapi", bytes)


async def healthz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    if not ctx.worker_alive():
        return error_response(503, "worker_stopped", "the worker loop is not running")
    return web.json_response({"status": "ok"})


async def _check(name: str, probe: Awaitable[Any]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, timeout=_CHECK_TIMEOUT)
    except TimeoutError:
        return name, f"no answer within {_CHECK_TIMEOUT:g}s"
    except ExportError as exc:
        return name, exc.message
    except Exception as exc:
        return name, f"{exc.__class__.__name__}: {exc}"
    return name, "ok"


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    now = time.monotonic()
    if now - ctx._ready_at > _READY_CACHE_SECONDS:
        results = await asyncio.gather(
            _check("database", ctx.queue.ping()),
            _check("bucket", check_bucket(ctx.s3, ctx.settings.bucket())),
        )
        ctx._ready_checks = dict(results)
        ctx._ready_at = now
        for name, outcome in results:
            if outcome != "ok":
                ctx.metrics.error("s3" if name == "bucket" else "database", "readiness")
    checks = dict(ctx._ready_checks)
    checks.update(ctx.extra_checks())
    checks["draining"] = "draining: shutting down" if ctx.draining() else "ok"
    failing = {k: v for k, v in checks.items() if v != "ok"}
    if failing:
        return web.json_response(
            {
                "error": "not_ready",
                "message": "; ".join(f"{k}: {v}" for k, v in failing.items()),
                "checks": checks,
            },
            status=503,
        )
    return web.json_response({"status": "ready", "checks": checks})


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    await request.app[QUEUE_STATS].refresh()
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def _tokens_for(request: web.Request) -> list[str] | None:
    """The tokens a request's path needs, or None when it is open."""
    settings = request.app[CONTEXT].settings
    if request.path.startswith("/v1/"):
        return [t.get_secret_value() for t in settings.api_tokens]
    if request.path == "/metrics":
        return settings.metrics_tokens()
    return None


def build_app(ctx: ApiContext) -> web.Application:
    app = web.Application(
        # The whole body of any request: 413 beyond it, before a handler reads it.
        client_max_size=limits.REQUEST_BODY_MAX_BYTES,
        middlewares=[
            # Outermost: every log line of a request carries its trace ids.
            request_spans,
            middleware.request_log(log_requests=ctx.settings.access_log),
            middleware.errors,
            middleware.bearer_auth(_tokens_for),
            middleware.readable_query,
        ],
    )
    app[CONTEXT] = ctx
    app[QUEUE_STATS] = QueueStats(ctx.queue, ctx.metrics)
    app[OPENAPI] = json.dumps(openapi_document()).encode()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/openapi.json", openapi)
    routes.add_routes(app.router)
    schedules.add_schedule_routes(app.router)
    job_actions.add_routes(app.router)
    pauses.add_pause_routes(app.router)
    workers.add_worker_routes(app.router)
    ui_app.mount(app, ctx)
    return app


async def start_api(ctx: ApiContext, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the API; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(
        build_app(ctx),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=5.0,
        logger=middleware.PROTOCOL_LOGGER,
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])
