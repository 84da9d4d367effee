"""The HTTP API against real Postgres and a real S3 server."""

from __future__ import annotations

import asyncpg
import pytest

from exportd import database
from exportd.api.context import ApiContext
from exportd.queue.postgres import PgJobStore
from exportd.s3.client import S3Client
from tests.support.daemon_harness import TOKEN
from tests.support.fixtures_api import AUTH, call, serving
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import insert_job


async def test_health_follows_the_worker_loop(api_ctx: ApiContext) -> None:
    alive = True
    api_ctx.worker_alive = lambda: alive
    async with serving(api_ctx) as base:
        assert (await call("GET", f"{base}/healthz"))[:2] == (200, {"status": "ok"})
        alive = False
        status, body, _ = await call("GET", f"{base}/healthz")
    assert status == 503
    assert body["error"] == "worker_stopped"


async def test_ready_when_database_and_bucket_answer_and_not_while_draining(
    api_ctx: ApiContext,
) -> None:
    draining = False
    api_ctx.draining = lambda: draining
    async with serving(api_ctx) as base:
        status, body, _ = await call("GET", f"{base}/readyz")
        assert status == 200, body
        assert body["checks"] == {"database": "ok", "bucket": "ok", "draining": "ok"}
        draining = True
        status, body, _ = await call("GET", f"{base}/readyz")
    assert status == 503
    assert body["error"] == "not_ready"
    assert body["checks"]["draining"] != "ok"
    assert "draining" in body["message"]


async def test_not_ready_names_the_failing_checks(
    s3_endpoint: S3Endpoint, dsn: str, s3_client: S3Client
) -> None:
    settings = s3_settings(s3_endpoint, "no-such-bucket-here", database_url=dsn)
    closed = await database.create_pool(dsn, min_size=1, max_size=1)
    await closed.close()
    ctx = ApiContext(queue=PgJobStore(closed), s3=s3_client, settings=settings)
    async with serving(ctx) as base:
        status, body, _ = await call("GET", f"{base}/readyz")
    assert status == 503
    assert body["checks"]["database"] != "ok"
    assert body["checks"]["bucket"] != "ok"
    assert "no-such-bucket-here" in body["checks"]["bucket"]


@pytest.mark.parametrize(
    "headers",
    [None, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong-token", "wrong-scheme"],
)
async def test_v1_needs_a_valid_bearer_token(
    api_ctx: ApiContext, pool: asyncpg.Pool, headers: dict[str, str] | None
) -> None:
    job_id = await insert_job(pool)
    async with serving(api_ctx) as base:
        status, body, response_headers = await call("GET", f"{base}/v1/jobs/{job_id}", headers)
        assert (await call("GET", f"{base}/v1/jobs/{job_id}", AUTH))[0] == 200
    assert status == 401
    assert body["error"] == "unauthorized"
    assert response_headers["WWW-Authenticate"] == "Bearer"


async def test_no_configured_tokens_refuse_everyone(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, s3_client: S3Client
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, api_tokens="")
    job_id = await insert_job(pool)
    async with serving(ApiContext(queue=PgJobStore(pool), s3=s3_client, settings=settings)) as base:
        for header in ({"Authorization": "Bearer "}, {"Authorization": "Bearer x"}):
            assert (await call("GET", f"{base}/v1/jobs/{job_id}", header))[0] == 401


async def test_job_documents(api_ctx: ApiContext, pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool, owner="u1", kind="orders", params={"a": 1})
    async with serving(api_ctx) as base:
        status, body, _ = await call("GET", f"{base}/v1/jobs/{job_id}", AUTH)
        assert status == 200
        assert body["id"] == str(job_id)
        assert (body["state"], body["owner"], body["params"]) == ("pending", "u1", {"a": 1})
        assert "download_url" not in body
        assert "upload_id" not in body

        for missing in ("not-a-uuid", "00000000-0000-0000-0000-000000000000", "1' OR '1'='1"):
            status, body, _ = await call("GET", f"{base}/v1/jobs/{missing}", AUTH)
            assert status == 404, missing
            assert body["error"] == "not_found"


# Postgres's own outage SQLSTATEs, raised for real by a trigger on the queue
# table: admin shutdown, cannot connect now, too many connections, a
# serialization failure, a deadlock, an I/O error, an internal error.
OUTAGE_SQLSTATES = ["57P01", "57P03", "53300", "40001", "40P01", "58030", "XX000"]


@pytest.mark.parametrize("sqlstate", OUTAGE_SQLSTATES)
async def test_every_database_outage_the_worker_retries_is_a_503(
    api: str, pool: asyncpg.Pool, sqlstate: str
) -> None:
    await pool.execute(
        "CREATE FUNCTION public.outage() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN RAISE EXCEPTION 'outage' USING ERRCODE = '{sqlstate}'; END $$;"
        " CREATE TRIGGER outage BEFORE INSERT ON exportd.jobs"
        " FOR EACH ROW EXECUTE FUNCTION public.outage()"
    )
    job = {"owner": "u1", "kind": "everything"}
    status, body, headers = await call("POST", f"{api}/v1/jobs", AUTH, json=job)
    assert (status, body["error"]) == (503, "database_unavailable"), body
    assert headers["Retry-After"].isdigit()


async def test_a_statement_postgres_refuses_is_no_outage(api: str, pool: asyncpg.Pool) -> None:
    await pool.execute(
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'refused'; END $$;"
        " CREATE TRIGGER refuse BEFORE INSERT ON exportd.jobs"
        " FOR EACH ROW EXECUTE FUNCTION public.refuse()"
    )
    job = {"owner": "u1", "kind": "everything"}
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, json=job)
    assert (status, body["error"]) == (500, "internal")
