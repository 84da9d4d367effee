"""GET /v1/workers against real Postgres and a real S3 server: the daemons alive and
the jobs each runs; an operator's view (403 with an owner scope, 401 without a
token); and a whole daemon that registers itself, runs a job, and leaves."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

import exportd
from exportd.api.openapi import openapi_document
from exportd.daemon.presence import HEARTBEAT_SECONDS
from exportd.queue.job import Heartbeat
from exportd.queue.postgres import PgJobStore
from exportd.queue.workers import WorkerIdentity
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_api import AUTH, call
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import eventually, insert_job

LEASE = 30.0


def _identity(worker_id: str, heartbeat_seconds: float = 10.0) -> WorkerIdentity:
    return WorkerIdentity(
        worker_id, "9.9.9", "host-a", 4242, datetime(2026, 3, 1, tzinfo=UTC), 3, heartbeat_seconds
    )


async def test_the_daemons_alive_with_what_each_runs(api: str, pool: asyncpg.Pool) -> None:
    store = PgJobStore(pool)
    await store.announce_worker(_identity("w-busy"))
    await store.announce_worker(_identity("w-idle"))
    await store.announce_worker(_identity("w-dead"))
    await pool.execute(
        "UPDATE exportd.workers SET last_heartbeat_at = now() - interval '1 hour'"
        " WHERE id = 'w-dead'"
    )
    job_id = await insert_job(pool, owner="u1", kind="orders")
    [job] = await store.claim("w-busy", 1, LEASE)
    await store.heartbeat("w-busy", LEASE, [Heartbeat(job.id, job.claim, job.owner, 10, 640, 25)])

    status, body, _ = await call("GET", f"{api}/v1/workers", AUTH)

    assert status == 200, body
    by_id = {w["worker_id"]: w for w in body["workers"]}
    assert set(by_id) == {"w-busy", "w-idle"}
    busy = by_id["w-busy"]
    assert {k: busy[k] for k in ("version", "host", "pid", "concurrency")} == {
        "version": "9.9.9",
        "host": "host-a",
        "pid": 4242,
        "concurrency": 3,
    }
    assert busy["started_at"] == "2026-03-01T00:00:00+00:00"
    [running] = busy["running"]
    assert running["id"] == str(job_id)
    assert (running["kind"], running["owner"], running["progress"]) == ("orders", "u1", 25)
    assert (running["rows_written"], running["bytes_written"], running["attempts"]) == (10, 640, 1)
    assert by_id["w-idle"]["running"] == []


@pytest.mark.parametrize("scope", ["header", "query"])
async def test_an_owner_scope_is_refused_with_403(api: str, scope: str) -> None:
    if scope == "header":
        status, body, _ = await call("GET", f"{api}/v1/workers", {**AUTH, "X-Exportd-Owner": "u1"})
    else:
        status, body, _ = await call("GET", f"{api}/v1/workers?owner_scope=u1", AUTH)
    assert (status, body["error"]) == (403, "forbidden"), body


async def test_without_a_token_401_and_unknown_parameters_400(api: str) -> None:
    status, body, _ = await call("GET", f"{api}/v1/workers")
    assert status == 401, body
    status, body, _ = await call("GET", f"{api}/v1/workers?state=x", AUTH)
    assert (status, body["error"]) == (400, "invalid_request"), body


def test_the_openapi_document_describes_the_route() -> None:
    document = openapi_document()
    get = document["paths"]["/v1/workers"]["get"]
    assert set(get["responses"]) >= {"200", "401", "403"}
    worker = document["components"]["schemas"]["Worker"]
    running = document["components"]["schemas"]["RunningJob"]
    assert set(worker["required"]) == set(worker["properties"])
    assert set(running["required"]) == set(running["properties"])


KINDS = """
[kinds.slow]
query = "SELECT pg_sleep(30) WHERE :owner <> ''"
"""


async def test_a_daemon_registers_shows_its_job_and_leaves_on_stop(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    async with running_daemon(settings, KINDS) as daemon:
        api = f"http://127.0.0.1:{daemon.api_port}"

        async def registered() -> list[asyncpg.Record]:
            rows: list[asyncpg.Record] = await pool.fetch("SELECT id FROM exportd.workers")
            return rows

        # Announced as it starts, not at its first heartbeat (10 s later).
        [row] = await eventually(registered, timeout=HEARTBEAT_SECONDS / 2)
        assert row["id"] == daemon.worker.worker_id
        job_id = await insert_job(pool, owner="u1", kind="slow")

        async def running_here() -> list[dict[str, object]]:
            status, body, _ = await call("GET", f"{api}/v1/workers", AUTH)
            assert status == 200, body
            return [w for w in body["workers"] if any(j["id"] == str(job_id) for j in w["running"])]

        [me] = await eventually(running_here)
        assert me["worker_id"] == daemon.worker.worker_id
        assert (me["version"], me["concurrency"]) == (exportd.__version__, FAST["concurrency"])
        daemon.worker.hurry()  # the slow job is handed back at once on stop

    assert await pool.fetch("SELECT id FROM exportd.workers") == []
