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

import aiohttp
import asyncpg
import pytest

from exportd.storage import list_open_uploads, open_s3_client
from tests.fixtures_s3 import S3Endpoint, create_bucket, free_port, s3_settings
from tests.helpers import eventually, insert_job, job_row

ROOT = Path(__file__).resolve().parent.parent

SLOW = """
[kinds.slow]
query = '''
SELECT g AS n, repeat('x', 100000) AS pad,
       CASE WHEN g > 70 THEN pg_sleep(0.1)::text END AS nap
FROM generate_series(1, 3000) AS g
WHERE :owner <> ''
'''
"""


async def healthy(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/healthz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EXPORTD_S3_BUCKET": ""}, "EXPORTD_S3_BUCKET"),
        ({"EXPORTD_DATABASE_URL": "mysql://nope"}, "EXPORTD_DATABASE_URL: must be a postgresql"),
        ({"EXPORTD_CONCURRENCY": "lots"}, "EXPORTD_CONCURRENCY"),
    ],
)
def test_bad_settings_stop_the_daemon_with_one_line(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    definitions = tmp_path / "kinds.toml"
    definitions.write_text(SLOW)
    base = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTD_")} | {
        "PYTHONPATH": str(ROOT),
        "EXPORTD_S3_BUCKET": "bucket",
        "EXPORTD_DEFINITIONS": str(definitions),
        "EXPORTD_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:1/db",
    }
    result = subprocess.run(
        [sys.executable, "-m", "exportd", "run"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr


def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    definitions = tmp_path / "kinds.toml"
    definitions.write_text(SLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTD_")} | {
        "PYTHONPATH": str(ROOT),
        "EXPORTD_S3_BUCKET": "bucket",
        "EXPORTD_DEFINITIONS": str(definitions),
        "EXPORTD_DATABASE_URL": f"postgresql://u:hunter2@127.0.0.1:{free_port()}/db",
    }
    result = subprocess.run(
        [sys.executable, "-m", "exportd", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot reach the database" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
