"""Webhooks from a whole daemon (in-process), real Postgres and real S3 servers:
an export's completion reaches the receiver, signed, and shows in the API and
in /metrics; a receiver that never answers holds up no job."""

from __future__ import annotations

import time

import aiohttp
import asyncpg
import pytest

from exportd.daemon.serve import StartupError
from exportd.settings.model import SettingsError
from tests.support.daemon_harness import FAST, TOKEN, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, s3_settings
from tests.support.helpers import api_get, eventually, insert_job, wait_for_state
from tests.support.webhook_receiver import HANG, new_secret, receiving

KINDS = """
[kinds.numbers]
query = "SELECT g AS n FROM generate_series(1, 10) AS g WHERE :owner <> ''"
"""


async def metrics_text(port: int) -> str:
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as r,
    ):
        return await r.text()


async def test_a_completed_export_is_delivered_signed_and_listed(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    secrets = [new_secret(), new_secret()]
    async with receiving(secrets) as receiver:
        settings = s3_settings(
            s3_endpoint,
            s3_bucket,
            database_url=dsn,
            **FAST,
            webhook_url=receiver.url(),
            webhook_secret=" ".join(secrets),
        )
        async with running_daemon(settings, KINDS) as daemon:
            job_id = await insert_job(pool, owner="alice", kind="numbers")
            row = await wait_for_state(pool, job_id, {"completed", "failed"})
            assert row["state"] == "completed", row["error"]
            await receiver.wait_for(1)

            async def listed() -> object:
                status, doc = await api_get(daemon.api_port, f"/v1/jobs/{job_id}")
                assert status == 200
                return doc if doc["deliveries"][0]["state"] == "delivered" else None

            doc = await eventually(listed)
            text = await metrics_text(daemon.api_port)
    [got] = receiver.received
    assert got.verified == [True, True]
    payload = got.payload
    assert payload["type"] == "export.completed"
    data = payload["data"]
    assert data["id"] == str(job_id)
    assert data["state"] == "completed"
    assert data["row_count"] == 10
    assert data["object_key"] == row["object_key"]
    assert "download_url" not in data
    assert "download_url_expires_at" not in data
    [delivery] = doc["deliveries"]
    assert delivery["id"] == got.id
    assert delivery["type"] == "export.completed"
    assert delivery["recent_attempts"][0]["status"] == 200
    assert "download_url" in doc  # the API still gives one, to whoever asks with a token
    assert 'exportd_webhook_deliveries_total{outcome="delivered"} 1.0' in text
    assert "exportd_webhook_pending" in text


async def test_a_receiver_that_never_answers_holds_up_no_job(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool
) -> None:
    async with receiving([new_secret()]) as receiver:
        receiver.on("/hook", *([HANG] * 100))
        settings = s3_settings(
            rclone_server,
            create_bucket(rclone_server),
            database_url=dsn,
            **FAST,
            webhook_url=receiver.url(),
            webhook_secret=receiver.secrets[0],
            webhook_timeout=30.0,
            webhook_concurrency=2,
        )
        started = time.monotonic()
        async with running_daemon(settings, KINDS):
            ids = [await insert_job(pool, owner=f"o{i}", kind="numbers") for i in range(6)]
            for job_id in ids:
                row = await wait_for_state(pool, job_id, {"completed", "failed"})
                assert row["state"] == "completed", row["error"]
            elapsed = time.monotonic() - started
            await receiver.wait_for(2)
        stopped = time.monotonic() - started
    # Every job ran while both webhook slots hung on a receiver with a 30 s deadline,
    # and the daemon stopped without waiting for them.
    assert elapsed < 20
    assert stopped - elapsed < 15
    pending = await pool.fetchval(
        "SELECT count(*) FROM exportd.webhook_deliveries WHERE state = 'pending'"
    )
    assert pending == 6
    # The two cut short were handed back, their attempt returned.
    assert await pool.fetchval("SELECT max(attempts) FROM exportd.webhook_deliveries") == 0


async def test_a_kind_url_without_a_secret_stops_the_start(
    dsn: str, rclone_server: S3Endpoint
) -> None:
    kinds = KINDS + 'webhook_url = "https://app.example/hooks"\n'
    settings = s3_settings(rclone_server, create_bucket(rclone_server), database_url=dsn, **FAST)
    with pytest.raises((SettingsError, StartupError), match="EXPORTD_WEBHOOK_SECRET"):
        async with running_daemon(settings, kinds):
            pass
