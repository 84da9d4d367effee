"""`exportd run` as a real process: SIGTERM hands running jobs back and exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from exportd.s3.client import open_s3_client
from exportd.s3.objects import list_open_uploads
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port, s3_settings
from tests.support.helpers import ROOT, eventually, healthy, insert_job, job_row

SLOW = """
[kinds.slow]
query = '''
SELECT g AS n, repeat('x', 100000) AS pad,
       CASE WHEN g > 70 THEN pg_sleep(0.1)::text END AS nap
FROM generate_series(1, 3000) AS g
WHERE :owner <> ''
'''
"""


async def test_sigterm_hands_running_jobs_back_without_spending_an_attempt(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    definitions = tmp_path / "kinds.toml"
    definitions.write_text(SLOW)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EXPORTD_DATABASE_URL": dsn,
        "EXPORTD_S3_BUCKET": bucket,
        "EXPORTD_S3_ENDPOINT_URL": rclone_server.url,
        "EXPORTD_S3_ACCESS_KEY_ID": rclone_server.access_key,
        "EXPORTD_S3_SECRET_ACCESS_KEY": rclone_server.secret_key,
        "EXPORTD_S3_PART_SIZE": str(5 * 1024 * 1024),
        "EXPORTD_S3_MAX_EXPORT_BYTES": str(10_000 * 5 * 1024 * 1024),
        "EXPORTD_DEFINITIONS": str(definitions),
        "EXPORTD_API_PORT": str(port),
        "EXPORTD_SHUTDOWN_GRACE_SECONDS": "1",
        "EXPORTD_POLL_INTERVAL": "0.2",
        "EXPORTD_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exportd", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        await eventually(lambda: healthy(port), timeout=30)
        job_id = await insert_job(pool, owner="o", kind="slow")

        async def uploading() -> bool:
            return (await job_row(pool, job_id))["upload_id"] is not None

        await eventually(uploading, timeout=30)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log_path.read_text()
    assert code == 0, output
    assert took < 1 + 10, "the grace period bounds the shutdown"

    row = await job_row(pool, job_id)
    assert row["state"] == "pending", output
    assert row["attempts"] == 0, "a shutdown must not spend an attempt"
    assert row["worker_id"] is None
    assert row["upload_id"] is None

    settings = s3_settings(rclone_server, bucket)
    async with contextlib.AsyncExitStack() as stack:
        s3 = await open_s3_client(settings, stack)
        assert await list_open_uploads(s3, bucket, "") == []

    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert "job_released" in names
    assert names[-1] == "daemon_stopped"
    started = next(e for e in events if e["event"] == "job_started")
    assert {"job_id", "owner", "kind", "attempt", "worker_id"} <= started.keys()
    assert started["job_id"] == str(job_id)
