"""What every route shares: request ids and access logs, JSON errors, /metrics and
its token, the OpenAPI document, and answers during a database outage."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from exportd import database
from exportd.api.app import build_app
from exportd.api.context import ApiContext
from exportd.api.openapi import openapi_document
from exportd.metrics import Metrics
from exportd.queue.postgres import PgJobStore
from exportd.queue.stats import QueueStats
from exportd.s3.client import S3Client
from tests.support.daemon_harness import TOKEN
from tests.support.fixtures_api import AUTH, call, serving
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import insert_job


async def scrape(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as r:
        return r.status, await r.text()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_every_answer_carries_a_request_id_and_one_access_log_line(
    api: str, pool: asyncpg.Pool
) -> None:
    job_id = await insert_job(pool)
    with capture_logs() as logs:
        traced = {**AUTH, "X-Request-Id": "abc-1"}
        _, _, given = await call("GET", f"{api}/v1/jobs/{job_id}", traced)
        _, _, forged = await call("GET", f"{api}/nope", {"X-Request-Id": 'x" level=error'})
        _, _, fresh = await call("GET", f"{api}/v1/jobs/{job_id}")
        await call("GET", f"{api}/healthz")
    assert given["X-Request-Id"] == "abc-1"
    assert forged["X-Request-Id"] not in ("", 'x" level=error')
    assert fresh["X-Request-Id"] not in ("", forged["X-Request-Id"])
    lines = [e for e in logs if e["event"] == "http_request"]
    assert [(e["method"], e["path"], e["status"], e["request_id"]) for e in lines[:3]] == [
        ("GET", "/v1/jobs/{id}", 200, "abc-1"),
        ("GET", "<unmatched>", 404, forged["X-Request-Id"]),
        ("GET", "/v1/jobs/{id}", 401, fresh["X-Request-Id"]),
    ]
    # Probes are routine: logged, but below the default level.
    assert [(e["path"], e["log_level"]) for e in lines[3:]] == [("/healthz", "debug")]
    assert {e["log_level"] for e in lines[:3]} == {"info"}
    assert all(e["duration_ms"] >= 0 for e in lines)


async def test_unknown_routes_and_methods_answer_json(api: str) -> None:
    status, body, _ = await call("GET", f"{api}/nope")
    assert (status, body["error"]) == (404, "not_found")
    status, body, _ = await call("POST", f"{api}/healthz")
    assert (status, body["error"]) == (405, "method_not_allowed")
    status, body, _ = await call("GET", f"{api}/v1/nothing-here", AUTH)
    assert (status, body["error"]) == (404, "not_found")
    status, body, headers = await call("PUT", f"{api}/v1/jobs", AUTH)
    assert (status, body["error"]) == (405, "method_not_allowed")
    assert set(headers["Allow"].split(",")) == {"GET", "HEAD", "POST"}


async def test_a_body_too_large_is_refused_in_json(api: str) -> None:
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, data=b"x" * (2 * 1024 * 1024))
    assert (status, body["error"]) == (413, "request_entity_too_large")


async def test_metrics_report_the_queue_in_prometheus_format(
    api: str, api_ctx: ApiContext, pool: asyncpg.Pool
) -> None:
    for _ in range(3):
        await insert_job(pool, kind="orders")
    failed = await insert_job(pool, kind="orders")
    await pool.execute("UPDATE exportd.jobs SET state = 'failed' WHERE id = $1", failed)
    await pool.execute(
        "UPDATE exportd.jobs SET run_after = now() - interval '90 seconds' WHERE state = 'pending'"
    )
    api_ctx.metrics.jobs_claimed.labels("orders").inc(2)
    status, text = await scrape(f"{api}/metrics")
    assert status == 200
    found = samples(text)
    assert found[("exportd_queue_jobs", frozenset({("state", "pending")}))] == 3
    assert found[("exportd_queue_jobs", frozenset({("state", "failed")}))] == 1
    assert found[("exportd_queue_jobs", frozenset({("state", "completed")}))] == 0
    assert 90 <= found[("exportd_queue_oldest_pending_seconds", frozenset())] < 300
    assert found[("exportd_jobs_claimed_total", frozenset({("kind", "orders")}))] == 2


async def test_queue_figures_are_read_once_per_period_whatever_the_scrapes(
    pool: asyncpg.Pool,
) -> None:
    await insert_job(pool)
    cached, fresh = Metrics(), Metrics()
    slow = QueueStats(PgJobStore(pool), cached, max_age=3600)
    eager = QueueStats(PgJobStore(pool), fresh, max_age=0)
    await asyncio.gather(slow.refresh(), slow.refresh(), eager.refresh())
    await insert_job(pool)
    await asyncio.gather(slow.refresh(), eager.refresh())
    assert cached.value("exportd_queue_jobs", {"state": "pending"}) == 1
    assert fresh.value("exportd_queue_jobs", {"state": "pending"}) == 2


async def test_metrics_can_require_a_token(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, s3_client: S3Client
) -> None:
    settings = s3_settings(
        s3_endpoint, s3_bucket, database_url=dsn, api_tokens=TOKEN, metrics_token="scraper"
    )
    async with serving(ApiContext(queue=PgJobStore(pool), s3=s3_client, settings=settings)) as base:
        assert (await scrape(f"{base}/metrics"))[0] == 401
        assert (await scrape(f"{base}/metrics", {"Authorization": "Bearer nope"}))[0] == 401
        assert (await scrape(f"{base}/metrics", {"Authorization": "Bearer scraper"}))[0] == 200
        assert (await scrape(f"{base}/metrics", AUTH))[0] == 200
        # Probes stay open, and the scraper's token opens nothing else.
        assert (await call("GET", f"{base}/healthz"))[0] == 200
        scraper = {"Authorization": "Bearer scraper"}
        assert (await call("GET", f"{base}/v1/kinds", scraper))[0] == 401


async def test_during_a_database_outage_answers_are_503_and_scrapes_leave_the_queue_out(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, s3_client: S3Client
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, api_tokens=TOKEN)
    closed = await database.create_pool(dsn, min_size=1, max_size=1)
    await closed.close()
    ctx = ApiContext(queue=PgJobStore(closed), s3=s3_client, settings=settings)
    async with serving(ctx) as base:
        status, body, headers = await call("GET", f"{base}/v1/jobs?owner=u1", AUTH)
        assert (status, body["error"]) == (503, "database_unavailable")
        assert headers["Retry-After"].isdigit()
        status, text = await scrape(f"{base}/metrics")
    assert status == 200
    assert "exportd_queue_jobs" not in text
    found = samples(text)
    assert found[("exportd_database_errors_total", frozenset({("operation", "queue_stats")}))] == 1
    assert found[("exportd_database_errors_total", frozenset({("operation", "api")}))] == 1


def _aiohttp_routes(ctx: ApiContext) -> set[tuple[str, str]]:
    app = build_app(ctx)
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        # The dashboard's pages are HTML for people, not the API (docs/operations.md).
        and not route.resource.canonical.startswith("/ui")
    }


def test_the_openapi_document_describes_exactly_the_routes(api_ctx: ApiContext) -> None:
    document = openapi_document()
    described = {(method, path) for path, item in document["paths"].items() for method in item}
    assert described == _aiohttp_routes(api_ctx)


async def test_the_openapi_document_is_served(api: str) -> None:
    status, body, _ = await call("GET", f"{api}/v1/openapi.json", AUTH)
    assert status == 200
    assert body == openapi_document()


@pytest.mark.parametrize("path", ["/v1/jobs?owner=u1", "/v1/kinds", "/v1/openapi.json"])
async def test_every_v1_route_needs_the_token(api: str, path: str) -> None:
    status, body, headers = await call("GET", f"{api}{path}")
    assert (status, body["error"], headers["WWW-Authenticate"]) == (401, "unauthorized", "Bearer")
