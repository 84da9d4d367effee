"""A real `exportd run` and real S3: a paused kind's job waits, readiness holds, and
the job completes once the kind is resumed."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import asyncpg

from exportd.s3.client import open_s3_client
from tests.support.daemon_harness import TOKEN
from tests.support.daemon_process import daemon_env, daemon_process, log_events, status
from tests.support.fixtures_api import call
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port, s3_settings
from tests.support.helpers import eventually, exportd, insert_job, job_row, wait_for_state

KINDS = """
[kinds.numbers]
query = "SELECT g AS n FROM generate_series(1, 10) AS g WHERE :owner <> ''"

[kinds.letters]
query = "SELECT 'a' AS l WHERE :owner <> ''"
"""
POLL_SECONDS = 0.2  # daemon_env's EXPORTD_POLL_INTERVAL


async def test_a_paused_kind_waits_until_resumed_then_completes(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    port = free_port()
    env = daemon_env(
        tmp_path, KINDS, dsn, rclone_server, bucket, port, api_tokens=TOKEN, log_level="debug"
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    paused = await exportd("pause", "numbers", "--reason", "e2e", env=env, cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr

    with daemon_process(env, tmp_path) as log_path:

        async def ready() -> bool:
            return (await status(port, "/readyz"))[0] == 200

        await eventually(ready, timeout=30)
        waiting = await insert_job(pool, owner="o", kind="numbers")
        other = await insert_job(pool, owner="o", kind="letters")
        done = await wait_for_state(pool, other, {"completed", "failed"})
        assert done["state"] == "completed", done["error"]
        # Many polls (and the insert's own wake-up) later, still waiting.
        await asyncio.sleep(10 * POLL_SECONDS)
        assert (await job_row(pool, waiting))["state"] == "pending"
        code, ready_body = await status(port, "/readyz")
        assert (code, ready_body["status"]) == (200, "ready")
        code, kinds, _ = await call("GET", f"http://127.0.0.1:{port}/v1/kinds", auth)
        assert {k["name"]: k["paused"] for k in kinds["kinds"]} == {
            "numbers": True,
            "letters": False,
        }

        code, body, _ = await call("POST", f"http://127.0.0.1:{port}/v1/kinds/numbers/resume", auth)
        assert (code, body["paused"]) == (200, False)
        row = await wait_for_state(pool, waiting, {"completed", "failed"}, timeout=30)
        assert row["state"] == "completed", row["error"]

    listed = await _object_keys(rclone_server, bucket)
    assert row["object_key"] in listed
    events = log_events(log_path)
    assert [e["kind"] for e in events if e["event"] == "kind_resumed"] == ["numbers"]


async def _object_keys(endpoint: S3Endpoint, bucket: str) -> set[str]:
    async with contextlib.AsyncExitStack() as stack:
        s3 = await open_s3_client(s3_settings(endpoint, bucket), stack)
        listed = await s3.list_objects_v2(Bucket=bucket)
    return {o["Key"] for o in listed.get("Contents", [])}
