"""`exportd retry JOB_ID`, run as a real process against real Postgres."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg

from exportd.errors import ErrorKind
from exportd.queue.postgres import PgJobStore
from tests.support.helpers import clean_env, exportd, insert_job, job_row


async def test_retry_makes_a_failed_job_pending_and_refuses_clearly_otherwise(
    dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    store = PgJobStore(pool)
    job_id = await insert_job(pool, owner="u1", max_attempts=4)
    [job] = await store.claim("w1", 1, 30)
    assert await store.fail(job, "w1", "bad SQL", ErrorKind.QUERY_ERROR)
    env = clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_LOG_FORMAT="json")

    done = await exportd("retry", str(job_id), env=env, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["id"], doc["state"], doc["attempts"], doc["max_attempts"]) == (
        str(job_id),
        "pending",
        0,
        4,
    )
    assert [(r["outcome"], r["error"]) for r in doc["runs"]] == [("failed", "bad SQL")]
    [logged] = [json.loads(line) for line in done.stderr.splitlines() if "job_retried" in line]
    assert (logged["job_id"], logged["by"]) == (str(job_id), "cli")
    assert logged["operator"]
    assert (await job_row(pool, job_id))["state"] == "pending"

    again = await exportd("retry", str(job_id), env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert "is pending: only a failed or cancelled job can be retried" in again.stderr
    assert again.stdout == ""

    unknown = await exportd("retry", str(uuid.uuid4()), env=env, cwd=tmp_path)
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert "no job" in unknown.stderr

    malformed = await exportd("retry", "42", env=env, cwd=tmp_path)
    assert malformed.returncode == 2
    assert "not a job id: '42'" in malformed.stderr

    status = await exportd("status", str(job_id), env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert [r["outcome"] for r in json.loads(status.stdout)["runs"]] == ["failed"]
