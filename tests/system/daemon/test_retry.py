"""A real `exportd run`: a job that failed for good is retried through the API once
its cause is fixed, and completes, its runs showing both attempts."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import asyncpg

from exportd.s3.client import open_s3_client
from tests.support.daemon_harness import TOKEN
from tests.support.daemon_process import daemon_env, daemon_process, log_events
from tests.support.fixtures_api import AUTH, call
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port, s3_settings
from tests.support.helpers import eventually, insert_job, job_row, wait_for_state

# The kind reads a table that does not exist yet: its first run fails for good
# (query_error), as a definition deployed before its table would.
KINDS = """
[kinds.ledger]
query = "SELECT id, amount FROM public.ledger WHERE owner = :owner ORDER BY id"
"""


async def test_a_job_that_failed_for_good_is_retried_and_completes(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    env = daemon_env(tmp_path, KINDS, dsn, rclone_server, bucket, port, api_tokens=TOKEN)
    with daemon_process(env, tmp_path) as log_path:
        job_id = await insert_job(pool, owner="o1", kind="ledger", max_attempts=3)
        failed = await wait_for_state(pool, job_id, {"completed", "failed"})
        assert (failed["state"], failed["error_kind"], failed["attempts"]) == (
            "failed",
            "query_error",
            1,
        )
        assert "ledger" in failed["error"]

        await pool.execute(
            "CREATE TABLE public.ledger (id int PRIMARY KEY, owner text, amount numeric);"
            " INSERT INTO public.ledger VALUES (1, 'o1', 9.5), (2, 'o2', 1), (3, 'o1', 2)"
        )
        status, body, _ = await call("POST", f"{api}/v1/jobs/{job_id}/retry", AUTH)
        assert status == 202, body
        assert (body["state"], body["attempts"], body["max_attempts"]) == ("pending", 0, 3)

        done = await wait_for_state(pool, job_id, {"completed", "failed"})
        assert done["state"] == "completed", done["error"]
        assert (done["attempts"], done["row_count"], done["error"]) == (1, 2, None)
        status, doc, _ = await call("GET", f"{api}/v1/jobs/{job_id}", AUTH)
        assert status == 200

        async def retried_logged() -> bool:
            return any(e["event"] == "job_retried" for e in log_events(log_path))

        await eventually(retried_logged, timeout=10)

    first, second = doc["runs"]
    assert (first["attempt"], first["outcome"], first["error_kind"]) == (1, "failed", "query_error")
    assert "ledger" in first["error"]
    assert (second["attempt"], second["outcome"], second["error_kind"]) == (1, "completed", None)
    assert first["worker_id"] == second["worker_id"]  # the same daemon ran both
    assert first["finished_at"] <= second["started_at"]
    assert doc["download_url"]
    [logged] = [e for e in log_events(log_path) if e["event"] == "job_retried"]
    assert (logged["job_id"], logged["by"]) == (str(job_id), "api")
    async with contextlib.AsyncExitStack() as stack:
        s3 = await open_s3_client(s3_settings(rclone_server, bucket), stack)
        got = await s3.get_object(Bucket=bucket, Key=(await job_row(pool, job_id))["object_key"])
        body_bytes = await got["Body"].read()
    assert body_bytes.decode().splitlines() == ["id,amount", "1,9.5", "3,2"]
    assert uuid.UUID(doc["id"]) == job_id
