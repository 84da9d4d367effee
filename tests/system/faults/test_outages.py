"""Outages reproduced against real servers and a real `exportd run` process.

Postgres is a throwaway cluster of the test's own, stopped and started
mid-export (never the machine's cluster). S3 is an rclone server of the
test's own on a fixed port, stopped and started again; rclone forgets open
multipart uploads when it stops, so a second test puts a proxy answering
503 in front of a server that keeps them, and the upload sweep has to abort
what the outage left open. What must hold after each: every job completed
exactly once, none left in ``processing``, no multipart upload left open.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from exportd import database
from exportd.s3.client import open_s3_client
from exportd.s3.objects import list_open_uploads
from tests.support.daemon_process import daemon_env, daemon_process, log_events, status
from tests.support.fixtures_s3 import (
    ACCESS_KEY,
    SECRET_KEY,
    S3Endpoint,
    create_bucket,
    find_binary,
    free_port,
    run_server,
    s3_settings,
)
from tests.support.helpers import eventually, insert_job
from tests.support.s3_proxy import failing_proxy
from tests.support.throwaway_pg import throwaway_cluster

# About ten MiB in two parts, paced so that an outage lands mid-export.
KINDS = """
[kinds.paced]
query = '''
SELECT g AS n, repeat('x', 50000) AS pad,
       CASE WHEN g % 20 = 0 THEN pg_sleep(0.1)::text END AS nap
FROM generate_series(1, 200) AS g
WHERE :owner <> ''
'''
"""

JOBS = 6


def outage_env(
    tmp_path: Path, dsn: str, endpoint: S3Endpoint, bucket: str, port: int
) -> dict[str, str]:
    """Short leases, polls, backoff and maintenance, so an outage plays out in seconds."""
    return daemon_env(
        tmp_path,
        KINDS,
        dsn,
        endpoint,
        bucket,
        port,
        s3_part_size=str(5 * 1024 * 1024),
        s3_max_export_bytes=str(10_000 * 5 * 1024 * 1024),
        concurrency="2",
        lease_seconds="3",
        reap_interval="0.3",
        backoff_base_seconds="0.5",
        backoff_max_seconds="2",
        maintenance_interval="0.5",
        orphan_upload_age="1",
        storage_failure_threshold="2",
        storage_probe_interval="0.5",
        shutdown_grace_seconds="5",
    )


async def some_upload_open(dsn: str) -> bool:
    """Some export has started its multipart upload (False while the database is away)."""
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            return bool(
                await conn.fetchval("SELECT count(*) FROM exportd.jobs WHERE upload_id IS NOT NULL")
            )
        finally:
            await conn.close()
    return False


async def all_completed(dsn: str, ids: list[uuid.UUID]) -> bool:
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            states = await conn.fetch(
                "SELECT state FROM exportd.jobs WHERE id = ANY($1::uuid[])", ids
            )
        finally:
            await conn.close()
        return [r["state"] for r in states] == ["completed"] * len(ids)
    return False


async def assert_each_completed_once(
    dsn: str, ids: list[uuid.UUID], log_path: Path, endpoint: S3Endpoint, bucket: str
) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM exportd.jobs WHERE id = ANY($1::uuid[])", ids
        )
        stuck = await conn.fetchval("SELECT count(*) FROM exportd.jobs WHERE state = 'processing'")
    finally:
        await conn.close()
    assert stuck == 0
    assert {r["state"] for r in rows} == {"completed"}
    assert all(r["upload_id"] is None for r in rows)
    events = log_events(log_path)
    completions = [e["job_id"] for e in events if e["event"] == "job_completed"]
    assert sorted(completions) == sorted(str(i) for i in ids), "each job completed exactly once"
    async with contextlib.AsyncExitStack() as stack:
        s3 = await open_s3_client(s3_settings(endpoint, bucket), stack)
        for row in rows:
            head = await s3.head_object(Bucket=bucket, Key=row["object_key"])
            assert head["ContentLength"] == row["size_bytes"]

        async def no_open_uploads() -> bool:
            return await list_open_uploads(s3, bucket, "") == []

        await eventually(no_open_uploads, timeout=20)
    return rows


# fast: Postgres ends every session cleanly; immediate: the server stops
# as if it crashed and recovers from its WAL on start.
@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_mid_export_loses_and_repeats_nothing(
    rclone_server: S3Endpoint, tmp_path: Path, mode: str
) -> None:
    bucket = create_bucket(rclone_server)
    port = free_port()
    with throwaway_cluster() as cluster:
        await cluster.migrate()
        conn = await database.connect(cluster.url)
        try:
            ids = [await insert_job(conn, owner=f"o{i}", kind="paced") for i in range(JOBS)]
        finally:
            await conn.close()
        env = outage_env(tmp_path, cluster.url, rclone_server, bucket, port)
        with daemon_process(env, tmp_path) as log_path:
            await eventually(lambda: _ready(port), timeout=30)

            await eventually(lambda: some_upload_open(cluster.url), timeout=30)
            await asyncio.to_thread(cluster.stop, mode)

            # The outage: alive, not ready, and saying why.
            async def not_ready() -> Any:
                code, body = await status(port, "/readyz")
                return body if code == 503 else None

            body = await eventually(not_ready, timeout=15)
            assert body["checks"]["database"] != "ok"
            for _ in range(5):
                assert (await status(port, "/healthz"))[0] == 200
                await asyncio.sleep(0.2)

            await asyncio.to_thread(cluster.start)
            await eventually(lambda: _ready(port), timeout=30)
            await eventually(lambda: all_completed(cluster.url, ids), timeout=60)
            rows = await assert_each_completed_once(
                cluster.url, ids, log_path, rclone_server, bucket
            )
        events = [e["event"] for e in log_events(log_path)]
    # The listener came back: it listened twice, before and after the outage.
    assert events.count("listening") >= 2, events
    # The outage cost at most one attempt per job.
    assert max(r["attempts"] for r in rows) <= 2


async def _ready(port: int) -> bool:
    return (await status(port, "/readyz"))[0] == 200


async def test_s3_outage_opens_the_breaker_then_every_job_completes(
    dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    s3_port = free_port()
    data = tmp_path / "s3data"
    data.mkdir()
    (tmp_path / "rclone.conf").touch()
    argv = [
        find_binary("rclone"),
        "serve",
        "s3",
        "--config",
        str(tmp_path / "rclone.conf"),
        "--addr",
        f"127.0.0.1:{s3_port}",
        "--auth-key",
        f"{ACCESS_KEY},{SECRET_KEY}",
        str(data),
    ]
    endpoint = S3Endpoint("rclone", f"http://127.0.0.1:{s3_port}", ACCESS_KEY, SECRET_KEY)
    port = free_port()
    threshold, concurrency = 2, 2
    with contextlib.ExitStack() as s3_up:
        s3_up.enter_context(run_server("rclone", argv, endpoint.url, tmp_path / "s3-1.log"))
        bucket = create_bucket(endpoint)
        ids = [await insert_job(pool, owner=f"o{i}", kind="paced") for i in range(JOBS)]
        env = outage_env(tmp_path, dsn, endpoint, bucket, port)
        with daemon_process(env, tmp_path) as log_path:
            await eventually(lambda: _ready(port), timeout=30)

            await eventually(lambda: some_upload_open(dsn), timeout=30)
            s3_up.close()  # storage goes away mid-export

            async def breaker_open() -> Any:
                code, body = await status(port, "/readyz")
                if code == 503 and body["checks"].get("storage_breaker", "ok") != "ok":
                    return body
                return None

            await eventually(breaker_open, timeout=60)

            # Jobs that were running when storage went away end (and are
            # retried later); after them, nothing is claimed while it is open.
            async def idle() -> bool:
                return not await pool.fetchval(
                    "SELECT count(*) FROM exportd.jobs WHERE state = 'processing'"
                )

            await eventually(idle, timeout=60)
            spent = await pool.fetchval("SELECT sum(attempts) FROM exportd.jobs")
            for _ in range(10):
                running = await pool.fetchval(
                    "SELECT count(*) FROM exportd.jobs WHERE state = 'processing'"
                )
                assert running == 0
                await asyncio.sleep(0.2)
            assert await pool.fetchval("SELECT sum(attempts) FROM exportd.jobs") == spent
            assert (await status(port, "/healthz"))[0] == 200

            with run_server("rclone", argv, endpoint.url, tmp_path / "s3-2.log"):
                await eventually(lambda: all_completed(dsn, ids), timeout=60)
                rows = await assert_each_completed_once(dsn, ids, log_path, endpoint, bucket)
                events = log_events(log_path)
    names = [e["event"] for e in events]
    assert "storage_breaker_opened" in names
    assert "storage_breaker_closed" in names
    # Attempts the outage cost, over and above one per job: bounded by the
    # breaker, not by the jobs' max_attempts.
    extra = sum(r["attempts"] for r in rows) - len(rows)
    assert 0 < extra <= threshold + concurrency - 1, extra
    assert all(r["attempts"] < r["max_attempts"] for r in rows)


async def test_s3_answering_503_leaves_uploads_that_the_sweep_aborts(
    rclone_server: S3Endpoint, pool: asyncpg.Pool, dsn: str, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    ids = [await insert_job(pool, owner=f"o{i}", kind="paced") for i in range(JOBS)]
    port = free_port()
    async with failing_proxy(rclone_server.url) as proxy, contextlib.AsyncExitStack() as stack:
        # Straight to the server, past the proxy: what is really stored.
        direct = await open_s3_client(s3_settings(rclone_server, bucket), stack)
        endpoint = S3Endpoint(
            "proxy", proxy.url, rclone_server.access_key, rclone_server.secret_key
        )
        env = outage_env(tmp_path, dsn, endpoint, bucket, port)
        with daemon_process(env, tmp_path) as log_path:
            await eventually(lambda: _ready(port), timeout=30)

            await eventually(lambda: some_upload_open(dsn), timeout=30)
            proxy.failing = True

            async def idle_with_breaker_open() -> bool:
                code, body = await status(port, "/readyz")
                running = await pool.fetchval(
                    "SELECT count(*) FROM exportd.jobs WHERE state = 'processing'"
                )
                return code == 503 and body["checks"]["storage_breaker"] != "ok" and not running

            await eventually(idle_with_breaker_open, timeout=60)
            # The aborts of the interrupted uploads were refused too: they are
            # still open on the server.
            assert await list_open_uploads(direct, bucket, "") != []

            proxy.failing = False
            await eventually(lambda: all_completed(dsn, ids), timeout=60)
            rows = await assert_each_completed_once(dsn, ids, log_path, rclone_server, bucket)
        events = log_events(log_path)
    assert proxy.refused > 0
    # The sweep (whose lines say when the upload began) aborted them.
    swept = [e for e in events if e["event"] == "orphan_upload_aborted" and "initiated" in e]
    assert swept
    assert {r["error_kind"] for r in rows} == {None}
    extra = sum(r["attempts"] for r in rows) - len(rows)
    assert 0 < extra <= 2 + 2 - 1, extra
