"""A kind's quota on rows the application inserts directly, end to end: a whole
daemon, real Postgres, both S3 servers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from exportd.quotas import iso_utc
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import api_get, insert_job, job_row, wait_for_state

DEFINITIONS = """
[kinds.full]
query = "SELECT n FROM generate_series(1, 3) AS n WHERE :owner <> ''"
[kinds.full.quota]
max = 1
per = "P1D"
"""


def settings_for(endpoint: S3Endpoint, bucket: str, dsn: str) -> Any:
    return s3_settings(endpoint, bucket, database_url=dsn, **FAST)


@pytest.mark.parametrize("claimed_first", ["earlier", "later"])
async def test_of_two_rows_inserted_directly_one_completes_and_one_fails_for_quota(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, claimed_first: str
) -> None:
    # Inserted before the daemon starts, the later row at a higher priority when
    # it is to be claimed first: the decision follows creation, not the claim.
    earlier = await insert_job(pool, owner="alice", kind="full")
    later_priority = 5 if claimed_first == "later" else 0
    later = await insert_job(pool, owner="alice", kind="full", priority=later_priority)
    other = await insert_job(pool, owner="bob", kind="full")
    async with running_daemon(settings_for(s3_endpoint, s3_bucket, dsn), DEFINITIONS) as daemon:
        done = {"completed", "failed"}
        first = await wait_for_state(pool, earlier, done)
        second = await wait_for_state(pool, later, done)
        bob = await wait_for_state(pool, other, done)
        status, doc = await api_get(daemon.api_port, f"/v1/jobs/{later}")

    assert first["state"] == "completed", first["error"]
    assert bob["state"] == "completed", bob["error"]
    assert second["state"] == "failed"
    assert second["error_kind"] == "quota_exceeded"
    assert second["attempts"] == 1
    retry_at = iso_utc(first["created_at"] + timedelta(days=1))
    assert second["error"].endswith(f"it can be asked for again at {retry_at}")
    assert status == 200
    assert doc["error_kind"] == "quota_exceeded"
    # Refused before any query ran: nothing was uploaded for it.
    assert second["object_key"] is None
    assert (await job_row(pool, earlier))["row_count"] == 3
