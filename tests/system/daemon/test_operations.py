"""A real `exportd run`: systemd notifications, retention, and a start during an outage."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import asyncpg
import pytest
from botocore.exceptions import ClientError

from exportd import database
from exportd.s3.client import open_s3_client
from tests.support.daemon_process import daemon_env, daemon_process, log_events, status
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port, s3_settings
from tests.support.helpers import eventually, insert_job, job_row, wait_for_state
from tests.support.throwaway_pg import throwaway_cluster

KINDS = """
[kinds.numbers]
query = "SELECT g AS n FROM generate_series(1, 10) AS g WHERE :owner <> ''"
"""


async def test_notifies_systemd_and_expires_a_completed_export(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    port = free_port()
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.setblocking(False)
        env = daemon_env(tmp_path, KINDS, dsn, rclone_server, bucket, port)
        env.update(
            NOTIFY_SOCKET=str(notify_path),
            WATCHDOG_USEC="400000",
            EXPORTD_RETENTION="PT1S",
            EXPORTD_MAINTENANCE_INTERVAL="0.3",
        )
        with daemon_process(env, tmp_path) as log_path:
            job_id = await insert_job(pool, owner="o", kind="numbers")
            completed = await wait_for_state(pool, job_id, {"completed", "failed"})
            assert completed["state"] == "completed", completed["error"]
            await wait_for_state(pool, job_id, {"expired"})
        messages = []
        with contextlib.suppress(BlockingIOError):
            while True:
                messages.append(notify.recv(4096).decode())

    assert messages[0].startswith("READY=1")
    assert messages.count("WATCHDOG=1") >= 2
    # Pings go on while it drains: the worker loop lives until it has.
    assert any(m.startswith("STOPPING=1") for m in messages[1:])

    row = await job_row(pool, job_id)
    assert row["state"] == "expired"
    async with contextlib.AsyncExitStack() as stack:
        s3 = await open_s3_client(s3_settings(rclone_server, bucket), stack)
        with pytest.raises(ClientError) as gone:
            await s3.head_object(Bucket=bucket, Key=row["object_key"])
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    events = [e for e in log_events(log_path) if e["event"] == "job_expired"]
    assert [e["job_id"] for e in events] == [str(job_id)]


async def test_started_during_a_database_outage_it_waits_then_serves(
    rclone_server: S3Endpoint, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    port = free_port()
    with throwaway_cluster() as cluster:
        await cluster.migrate()
        await asyncio.to_thread(cluster.stop, "fast")
        env = daemon_env(tmp_path, KINDS, cluster.url, rclone_server, bucket, port)
        env["EXPORTD_STARTUP_WAIT_SECONDS"] = "60"
        with daemon_process(env, tmp_path) as log_path:

            async def waiting() -> bool:
                names = [e["event"] for e in log_events(log_path)]
                return names.count("database_unreachable") >= 2

            await eventually(waiting, timeout=30)
            await asyncio.to_thread(cluster.start)

            async def ready() -> bool:
                return (await status(port, "/readyz"))[0] == 200

            await eventually(ready, timeout=30)
            conn = await database.connect(cluster.url)
            try:
                job_id = await insert_job(conn, owner="o", kind="numbers")
                row = await wait_for_state(conn, job_id, {"completed", "failed"})
            finally:
                await conn.close()
        assert row["state"] == "completed", row["error"]
