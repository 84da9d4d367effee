"""A real `exportd run` daemon, with a real S3 server, turns a due schedule into a
completed export whose job carries the schedule's id."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from exportd import database
from tests.support.daemon_harness import TOKEN
from tests.support.daemon_process import daemon_env, daemon_process, log_events
from tests.support.fixtures_api import call
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port
from tests.support.helpers import download, eventually, healthy

KINDS = """
[kinds.numbers]
query = "SELECT g AS n, :owner AS owner FROM generate_series(1, :upto) AS g"
[kinds.numbers.params.upto]
type = "integer"
required = true
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_due_schedule_becomes_a_completed_export(
    dsn: str, rclone_server: S3Endpoint, tmp_path: Path
) -> None:
    port = free_port()
    env = daemon_env(
        tmp_path,
        KINDS,
        dsn,
        rclone_server,
        create_bucket(rclone_server),
        port,
        API_TOKENS=TOKEN,
        MAINTENANCE_INTERVAL="0.5",
    )
    base = f"http://127.0.0.1:{port}"
    with daemon_process(env, tmp_path) as log_path:
        await eventually(lambda: healthy(port), timeout=60)
        status, made, _ = await call(
            "POST",
            f"{base}/v1/schedules",
            AUTH,
            json={
                "owner": "u1",
                "kind": "numbers",
                "params": {"upto": 3},
                "cron": "0 8 * * 1",
                "timezone": "Europe/Zurich",
            },
        )
        assert status == 201, made
        schedule_id = uuid.UUID(made["id"])
        conn = await database.connect(dsn)
        try:
            # Monday 08:00 is not now: make the schedule due, as time would.
            await conn.execute(
                "UPDATE exportd.schedules SET next_run_at = now() WHERE id = $1", schedule_id
            )

            async def completed() -> asyncpg.Record | None:
                row: asyncpg.Record | None = await conn.fetchrow(
                    "SELECT * FROM exportd.jobs WHERE schedule_id = $1 AND state = 'completed'",
                    schedule_id,
                )
                return row

            job = await eventually(completed, timeout=60)
            jobs = await conn.fetchval(
                "SELECT count(*) FROM exportd.jobs WHERE schedule_id = $1", schedule_id
            )
            schedule = await conn.fetchrow(
                "SELECT * FROM exportd.schedules WHERE id = $1", schedule_id
            )
        finally:
            await conn.close()
        assert jobs == 1
        assert (job["owner"], job["kind"], job["params"], job["row_count"]) == (
            "u1",
            "numbers",
            {"upto": 3},
            3,
        )
        assert schedule["last_job_id"] == job["id"]
        assert schedule["last_error"] is None
        assert schedule["next_run_at"] > schedule["last_run_at"]
        status, doc, _ = await call("GET", f"{base}/v1/jobs/{job['id']}", AUTH)
        assert (status, doc["schedule_id"]) == (200, str(schedule_id))
        body, _ = await download(doc["download_url"])
        assert body == b"n,owner\n1,u1\n2,u1\n3,u1\n"
    ran = [e for e in log_events(log_path) if e.get("event") == "schedule_ran"]
    assert [e["schedule_id"] for e in ran] == [str(schedule_id)]
