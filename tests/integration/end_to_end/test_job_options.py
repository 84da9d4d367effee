"""Job options inserted directly, as an application does: checked by the worker with the
params before any query runs, the time zone checked in the export session, and a good
time zone used for the file."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import download_job, wait_for_state

DEFINITIONS = """
[kinds.stamp]
query = "SELECT :n::int AS n, '2025-01-01 00:00:00+00'::timestamptz AS at WHERE :owner <> ''"
locked_options = ["csv.delimiter"]
[kinds.stamp.params.n]
type = "integer"
"""


async def insert(pool: asyncpg.Pool, params: str, options: str) -> uuid.UUID:
    job_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO exportd.jobs (owner, kind, params, options)"
        " VALUES ('alice', 'stamp', $1::text::jsonb, $2::text::jsonb) RETURNING id",
        params,
        options,
    )
    return job_id


def settings_for(endpoint: S3Endpoint, bucket: str, dsn: str) -> Any:
    return s3_settings(endpoint, bucket, database_url=dsn, **FAST)


async def test_rows_with_bad_options_fail_invalid_params_and_good_ones_complete(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    async with running_daemon(settings_for(s3_endpoint, s3_bucket, dsn), DEFINITIONS) as daemon:
        bad = await insert(pool, '{"n": "x"}', '{"csv": {"profile": "word"}, "split_rows": 0}')
        locked = await insert(pool, '{"n": 1}', '{"csv": {"delimiter": ";"}}')
        unknown_zone = await insert(pool, '{"n": 1}', '{"timezone": "Mars/Olympus"}')
        undecodable = await insert(pool, '{"n": 1}', '{"split_rows": 1e5000}')
        good = await insert(pool, '{"n": 7}', '{"timezone": "Asia/Kolkata"}')
        rows = {
            name: await wait_for_state(pool, job_id, {"completed", "failed"})
            for name, job_id in {
                "bad": bad,
                "locked": locked,
                "unknown_zone": unknown_zone,
                "undecodable": undecodable,
                "good": good,
            }.items()
        }
        body, _ = await download_job(daemon.api_port, good)

    assert rows["good"]["state"] == "completed", rows["good"]["error"]
    # The job's zone is the session's: a half-hour offset, written with the timestamp.
    assert body == b"n,at\n7,2025-01-01 05:30:00+05:30\n"
    for name in ("bad", "locked", "unknown_zone", "undecodable"):
        row = rows[name]
        assert (row["state"], row["error_kind"]) == ("failed", "invalid_params"), name
        assert row["attempts"] == 1, name
    bad_error = rows["bad"]["error"]
    assert bad_error.startswith("n "), bad_error
    assert "options.csv.profile" in bad_error
    assert "options.split_rows" in bad_error, "params and options problems together"
    assert "locked by kind 'stamp'" in rows["locked"]["error"]
    assert "not a time zone the database knows" in rows["unknown_zone"]["error"]
    assert "options are not valid JSON" in rows["undecodable"]["error"]
