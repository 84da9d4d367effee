"""An export's whole life through the HTTP API of a running daemon: enqueue, follow,
download, delete; and a cancel that stops a running export."""

from __future__ import annotations

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exportd.s3.client import S3Client
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_api import AUTH, call
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import eventually

KINDS = """
[kinds.numbers]
filename = "numbers-to-{upto}"
query = "SELECT g AS n FROM generate_series(1, :upto) AS g WHERE :owner <> ''"
[kinds.numbers.params.upto]
type = "integer"
required = true

[kinds.slow]
query = "SELECT pg_sleep(30) WHERE :owner <> ''"
"""


@pytest.fixture
def daemon_settings(s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str) -> object:
    return s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)


async def test_enqueue_follow_download_and_delete(
    daemon_settings: object, s3_client: S3Client, s3_bucket: str
) -> None:
    async with running_daemon(daemon_settings, KINDS) as daemon:
        api = f"http://127.0.0.1:{daemon.api_port}"
        status, job, headers = await call(
            "POST",
            f"{api}/v1/jobs",
            AUTH,
            json={"owner": "u1", "kind": "numbers", "params": {"upto": 3}},
        )
        assert status == 202, job

        async def finished() -> object:
            _, doc, _ = await call("GET", f"{api}{headers['Location']}", AUTH)
            return doc if doc["state"] in ("completed", "failed") else None

        doc = await eventually(finished)
        assert doc["state"] == "completed", doc
        status, _, answer = await call("GET", f"{api}/v1/jobs/{job['id']}/download", AUTH)
        assert status == 302
        async with aiohttp.ClientSession() as session, session.get(answer["Location"]) as got:
            assert got.status == 200
            assert await got.read() == b"n\n1\n2\n3\n"
            assert 'filename="numbers-to-3.csv"' in got.headers["Content-Disposition"]

        status, deleted, _ = await call("DELETE", f"{api}/v1/jobs/{job['id']}", AUTH)
        assert (status, deleted["state"]) == (200, "expired")
        listed = await s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=doc["object_key"])
        assert listed.get("KeyCount", 0) == 0
        status, gone, _ = await call("GET", f"{api}/v1/jobs/{job['id']}/download", AUTH)
        assert (status, gone["error"]) == (410, "gone")
        status, page, _ = await call("GET", f"{api}/v1/jobs?owner=u1&state=expired", AUTH)
        assert [j["id"] for j in page["jobs"]] == [job["id"]]


async def test_delete_stops_a_running_export(daemon_settings: object, dsn: str) -> None:
    async with running_daemon(daemon_settings, KINDS) as daemon:
        api = f"http://127.0.0.1:{daemon.api_port}"
        _, job, _ = await call("POST", f"{api}/v1/jobs", AUTH, json={"owner": "u1", "kind": "slow"})

        async def running() -> bool:
            return any(str(j.id) == job["id"] for j in daemon.worker.running_jobs)

        await eventually(running)
        status, cancelled, _ = await call("DELETE", f"{api}/v1/jobs/{job['id']}", AUTH)
        assert (status, cancelled["state"]) == (200, "cancelled")

        async def stopped() -> bool:
            return not daemon.worker.running_jobs

        await eventually(stopped)
        assert daemon.metrics.value("exportd_jobs_cancelled_total", {"kind": "slow"}) == 1
    conn = await asyncpg.connect(dsn)
    try:
        state = await conn.fetchval("SELECT state FROM exportd.jobs WHERE id = $1::uuid", job["id"])
    finally:
        await conn.close()
    assert state == "cancelled"


async def test_metrics_keep_a_bounded_label_set_whatever_kinds_the_table_holds(
    daemon_settings: object, dsn: str
) -> None:
    """Rows with hundreds of kinds the definitions do not know: each fails as
    unknown_kind, and /metrics reports them all under one label."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO exportd.jobs (owner, kind) SELECT 'u1', 'junk-' || g || repeat('x', 100)"
            " FROM generate_series(1, 300) AS g"
        )
        async with running_daemon(daemon_settings, KINDS) as daemon:

            async def all_failed() -> bool:
                n = await conn.fetchval("SELECT count(*) FROM exportd.jobs WHERE state = 'failed'")
                return bool(n == 300)

            await eventually(all_failed, timeout=60)
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{daemon.api_port}/metrics") as response,
            ):
                text = await response.text()
    finally:
        await conn.close()
    kinds = {
        sample.labels["kind"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "kind" in sample.labels and family.name != "exportd_kind_paused"
    }
    assert kinds == {"other"}
    # The paused gauge names the daemon's own kinds (and "*", every kind) only.
    paused = {
        sample.labels["kind"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if family.name == "exportd_kind_paused"
    }
    assert paused == {"numbers", "slow", "*"}
    claimed = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "exportd_jobs_claimed_total"
    ]
    assert claimed == [300]
