"""`exportd run` SIGKILLed while a files bundle streams: the restarted daemon's reaper
aborts the dead worker's multipart upload, no partial object is left, and the job is
retried to completion with every stored object in its zip."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
from aiohttp import web

from exportd.s3.client import open_s3_client
from exportd.s3.objects import list_open_uploads
from tests.integration.export.test_files import KINDS, read_zip, stored_files
from tests.support.daemon_harness import TOKEN
from tests.support.daemon_process import daemon_env, log_events
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port, s3_settings
from tests.support.helpers import (
    download_job,
    eventually,
    healthy,
    insert_job,
    job_row,
    wait_for_state,
)
from tests.support.s3_proxy import failing_proxy

MIB = 1024 * 1024


def start(env: dict[str, str], cwd: Path, log_name: str) -> subprocess.Popen[bytes]:
    with (cwd / log_name).open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "exportd", "run"],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_sigkill_mid_bundle_leaves_no_upload_and_the_retry_completes(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    source = create_bucket(rclone_server)
    files = [
        ("receipts/one.bin", "one.bin", os.urandom(12 * MIB)),  # parts go up: an open upload
        ("receipts/two.bin", "two.bin", os.urandom(MIB)),  # its GET is held: the kill lands
    ]
    await stored_files(pool, rclone_server, source, files)

    def hold_second(request: web.Request) -> bool:
        return request.method == "GET" and request.path.endswith("/receipts/two.bin")

    async with failing_proxy(rclone_server.url) as proxy:
        proxy.hold = hold_second
        port = free_port()
        env = daemon_env(
            tmp_path,
            KINDS.format(policy="fail"),
            dsn,
            rclone_server,
            bucket,
            port,
            files_sources=source,
            files_s3_endpoint_url=proxy.url,
            lease_seconds="3",
            reap_interval="0.3",
            backoff_base_seconds="0.5",
            backoff_max_seconds="1",
            s3_part_size=str(5 * MIB),
            s3_max_export_bytes=str(10_000 * 5 * MIB),
            api_tokens=TOKEN,
        )
        job_id = await insert_job(pool, owner="ann", kind="my-data", fmt="zip")
        first = start(env, tmp_path, "first.log")
        try:
            await eventually(lambda: healthy(port), timeout=30)

            async def held() -> bool:
                return proxy.held > 0

            await eventually(held, timeout=60)
            killed = await job_row(pool, job_id)
            assert killed["state"] == "processing"
            assert killed["upload_id"] is not None, "the first object's parts went up"
            first.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(first.wait, 30) == -signal.SIGKILL
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()

        proxy.hold = None
        second = start(env, tmp_path, "second.log")
        try:
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=90)
            assert (row["state"], row["error_kind"]) == ("completed", None), row["error"]
            body, _ = await download_job(port, job_id)
        finally:
            stop(second)

    assert row["attempts"] == 2
    assert row["upload_id"] is None
    bundle, manifest = read_zip(body)
    for _, path, content in files:
        assert bundle.read(f"files/receipts/{path}") == content
    assert manifest["file_problems"] == []
    events = log_events(tmp_path / "second.log")
    aborted = [e for e in events if e["event"] == "orphan_upload_aborted"]
    assert [e["upload_id"] for e in aborted] == [killed["upload_id"]]

    async with contextlib.AsyncExitStack() as stack:
        client = await open_s3_client(s3_settings(rclone_server, bucket), stack)
        assert await list_open_uploads(client, bucket, "") == []
        listed = await client.list_objects_v2(Bucket=bucket)
    # Only the retry's object: the killed attempt left no partial one.
    assert [o["Key"] for o in listed.get("Contents", [])] == [row["object_key"]]
