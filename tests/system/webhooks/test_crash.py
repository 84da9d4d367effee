"""`exportd run` killed with SIGKILL between a job's state change and its webhook:
the event is still delivered, once another daemon's claim finds its lease run out
(at least once, with the same webhook-id)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from tests.support.daemon_process import daemon_env, daemon_process
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port
from tests.support.helpers import eventually, insert_job, wait_for_state
from tests.support.webhook_receiver import HANG, new_secret, receiving

KINDS = """
[kinds.numbers]
query = "SELECT g AS n FROM generate_series(1, 10) AS g WHERE :owner <> ''"
"""


async def test_a_daemon_killed_mid_delivery_delivers_after_restart(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    secret = new_secret()
    async with receiving([secret]) as receiver:
        receiver.on("/hook", HANG)  # the first request never gets its answer
        env = daemon_env(
            tmp_path,
            KINDS,
            dsn,
            rclone_server,
            create_bucket(rclone_server),
            free_port(),
            webhook_url=receiver.url(),
            webhook_secret=secret,
            webhook_timeout="2",  # a lease of 9 s
        )
        log = (tmp_path / "first.log").open("wb")
        first = subprocess.Popen(
            [sys.executable, "-m", "exportd", "run"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            job_id = await insert_job(pool, owner="o", kind="numbers")
            row = await wait_for_state(pool, job_id, {"completed", "failed"})
            assert row["state"] == "completed", row["error"]
            await receiver.wait_for(1)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
            log.close()
        [claimed] = await pool.fetch("SELECT * FROM exportd.webhook_deliveries")
        assert (claimed["state"], claimed["attempts"]) == ("pending", 1)
        # An event recorded while no daemon runs waits for the next one.
        idle = await insert_job(pool, owner="o", kind="numbers")
        assert await pool.fetchval("SELECT exportd.cancel($1)", idle)

        started = time.monotonic()
        with daemon_process(env, tmp_path):

            async def delivered() -> bool:
                states = await pool.fetch("SELECT state FROM exportd.webhook_deliveries")
                return [r["state"] for r in states] == ["delivered", "delivered"]

            await eventually(delivered, timeout=60)
        # Not before the dead daemon's lease ran out.
        assert time.monotonic() - started < 60

    by_job: dict[str, list[str]] = {}
    for got in receiver.at("/hook"):
        assert got.verified == [True]
        by_job.setdefault(got.payload["data"]["id"], []).append(got.id)
    assert by_job[str(job_id)] == [f"msg_{claimed['id'].hex}"] * 2
    assert len(by_job[str(idle)]) == 1
    rows = await pool.fetch(
        "SELECT d.job_id, d.attempts, array_agg(a.status ORDER BY a.attempt) AS statuses "
        "FROM exportd.webhook_deliveries d JOIN exportd.webhook_attempts a "
        "ON a.delivery_id = d.id GROUP BY d.job_id, d.attempts"
    )
    outcome = {r["job_id"]: (r["attempts"], r["statuses"]) for r in rows}
    # The killed attempt left no attempt row: only the outcome that was recorded.
    assert outcome[job_id] == (2, [200])
    assert outcome[idle] == (1, [200])
