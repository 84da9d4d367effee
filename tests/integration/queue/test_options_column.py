"""The options column (migration 0010): an object, bounded in bytes like params, and
schedules' options bounded the same way."""

from __future__ import annotations

import json

import asyncpg
import pytest

from exportd import limits
from exportd.queue.sql import migrations
from tests.support.helpers import insert_job


def test_the_migration_holds_the_numbers_of_limits() -> None:
    [sql] = [m.sql for m in migrations() if m.name == "job_options"]
    assert f"<= {limits.OPTIONS_MAX_BYTES}" in sql
    assert f"<= {limits.SCHEDULE_OPTIONS_MAX_BYTES}" in sql
    assert f"{limits.JSON_MAX_DEPTH} to last" in sql


async def test_a_job_inserted_without_options_has_an_empty_object(pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool)
    assert await pool.fetchval("SELECT options FROM exportd.jobs WHERE id = $1", job_id) == {}


@pytest.mark.parametrize("document", ["[]", '"csv"', "1", "null"])
async def test_options_that_are_no_object_are_refused(pool: asyncpg.Pool, document: str) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="jobs_options_is_object"):
        await pool.execute(
            "INSERT INTO exportd.jobs (owner, kind, options) VALUES ('u', 'k', $1::text::jsonb)",
            document,
        )


async def test_options_over_the_bound_are_refused(pool: asyncpg.Pool) -> None:
    over = json.dumps({"columns": ["x" * 60] * (limits.OPTIONS_MAX_BYTES // 60)})
    assert len(over) > limits.OPTIONS_MAX_BYTES
    with pytest.raises(asyncpg.CheckViolationError, match="jobs_options_bytes"):
        await pool.execute(
            "INSERT INTO exportd.jobs (owner, kind, options) VALUES ('u', 'k', $1::text::jsonb)",
            over,
        )
    with pytest.raises(asyncpg.CheckViolationError, match="schedules_options_bytes"):
        await pool.execute(
            "INSERT INTO exportd.schedules (owner, kind, options, cron)"
            " VALUES ('u', 'k', $1::text::jsonb, '@daily')",
            over,
        )


async def test_schedules_take_options_as_large_as_a_jobs(pool: asyncpg.Pool) -> None:
    within = json.dumps({"columns": ["x" * 60] * 200})
    assert 4096 < len(within) <= limits.OPTIONS_MAX_BYTES
    await pool.execute(
        "INSERT INTO exportd.schedules (owner, kind, options, cron)"
        " VALUES ('u', 'k', $1::text::jsonb, '@daily')",
        within,
    )
