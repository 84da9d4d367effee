"""The HTTP API: health for orchestrators, job status for the application.

``/healthz`` says the process and its worker loop live; ``/readyz`` says the
daemon can do work (database and bucket reachable, not draining). ``/v1/*``
needs a bearer token. Every error is JSON: ``{"error", "message"}``.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from exportd.errors import ExportError
from exportd.jobview import job_document, with_download
from exportd.metrics import Metrics
from exportd.settings import Settings
from exportd.sqlfiles import queries
from exportd.storage import S3Client, check_bucket

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Readiness is probed every few seconds by every load balancer and kubelet;
# checking the bucket that often would cost requests and add latency.
_READY_CACHE_SECONDS = 2.0
_CHECK_TIMEOUT = 2.0


@dataclass
class ApiContext:
    pool: asyncpg.Pool
    s3: S3Client
    settings: Settings
    worker_alive: Callable[[], bool] = lambda: True
    draining: Callable[[], bool] = lambda: False
    # More readiness checks, each "ok" or why not (the storage breaker).
    extra_checks: Callable[[], dict[str, str]] = dict
    metrics: Metrics = field(default_factory=Metrics)
    _ready_at: float = field(default=0.0)
    _ready_checks: dict[str, str] = field(default_factory=dict)


CONTEXT = web.AppKey("exportd_context", ApiContext)


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": code, "message": message, **extra}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return error_response(exc.status, code, exc.text or exc.reason)
    except Exception:
        structlog.get_logger().exception("api_error", path=request.path, method=request.method)
        return error_response(500, "internal", "internal error; see the daemon log")


def _authorized(header: str, tokens: list[str]) -> bool:
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    # Compare with every token, in constant time, so timing says nothing of
    # which token or how much of one matched.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(presented.encode(), token.encode())
    return matched


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/v1/"):
        settings = request.app[CONTEXT].settings
        tokens = [t.get_secret_value() for t in settings.api_tokens]
        if not _authorized(request.headers.get("Authorization", ""), tokens):
            response = error_response(
                401, "unauthorized", "send Authorization: Bearer <token> (EXPORTD_API_TOKENS)"
            )
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
    return await handler(request)


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
            _check("database", ctx.pool.fetchval(queries()["ping"])),
            _check("bucket", check_bucket(ctx.s3, ctx.settings.bucket())),
        )
        ctx._ready_checks = dict(results)
        ctx._ready_at = now
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


async def get_job(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    raw = request.match_info["id"]
    try:
        job_id = uuid.UUID(raw)
    except ValueError:
        # Malformed ids are unknown ids: nothing to tell a prober apart.
        return error_response(404, "not_found", f"no job {raw!r}")
    row = await ctx.pool.fetchrow(queries()["get_job"], job_id)
    if row is None:
        return error_response(404, "not_found", f"no job {job_id}")
    doc = await with_download(
        job_document(row), ctx.s3, ctx.settings.bucket(), ctx.settings.download_url_ttl
    )
    return web.json_response(doc)


def build_app(ctx: ApiContext) -> web.Application:
    app = web.Application(middlewares=[errors_middleware, auth_middleware])
    app[CONTEXT] = ctx
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/jobs/{id}", get_job)
    return app


async def start_api(ctx: ApiContext, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve the API; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(
        build_app(ctx), access_log=None, handle_signals=False, shutdown_timeout=5.0
    )
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, int(runner.addresses[0][1])
