"""A schedule's options reach the jobs it makes, and are checked again at each run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from exportd.definitions.loader import definitions_from_text
from exportd.definitions.params.spec import InvalidParams
from exportd.maintenance.scheduler import Scheduler
from exportd.queue.postgres import PgJobStore

T0 = datetime(2025, 3, 30, 6, 0, tzinfo=UTC)
KINDS = definitions_from_text(
    """
[kinds.orders]
query = "SELECT 1 AS id WHERE :owner <> ''"
locked_options = ["json"]
"""
)


def validate(kind: str, params: Any, options: Any) -> list[str]:
    """As the daemon's scheduler validates a run (exportd.daemon.serve)."""
    try:
        KINDS.require(kind).check(params, options)
    except InvalidParams as exc:
        return [e.message for e in exc.errors]
    return []


async def add_schedule(pool: asyncpg.Pool, options: str) -> uuid.UUID:
    schedule_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO exportd.schedules (owner, kind, options, cron, next_run_at)"
        " VALUES ('u1', 'orders', $1::text::jsonb, '0 6 * * *', $2) RETURNING id",
        options,
        T0,
    )
    return schedule_id


async def test_each_job_of_a_schedule_gets_its_options(pool: asyncpg.Pool) -> None:
    options = {"timezone": "Europe/Zurich", "csv": {"profile": "excel"}, "split_rows": 1000}
    schedule_id = await add_schedule(
        pool, '{"timezone": "Europe/Zurich", "csv": {"profile": "excel"}, "split_rows": 1000}'
    )
    assert await Scheduler(PgJobStore(pool), validate).run_once(T0) == 1
    job = await pool.fetchrow("SELECT * FROM exportd.jobs WHERE schedule_id = $1", schedule_id)
    assert job["options"] == options
    schedule = await pool.fetchrow("SELECT * FROM exportd.schedules WHERE id = $1", schedule_id)
    assert schedule["last_error"] is None


async def test_options_that_no_longer_fit_the_kind_are_the_runs_error(pool: asyncpg.Pool) -> None:
    schedule_id = await add_schedule(pool, '{"json": {"big_numbers": "string"}}')
    assert await Scheduler(PgJobStore(pool), validate).run_once(T0) == 1
    job = await pool.fetchrow("SELECT * FROM exportd.jobs WHERE schedule_id = $1", schedule_id)
    # The job is made all the same, with the schedule's options: the worker fails it.
    assert job["options"] == {"json": {"big_numbers": "string"}}
    schedule = await pool.fetchrow("SELECT * FROM exportd.schedules WHERE id = $1", schedule_id)
    assert "options.json.big_numbers is locked by kind 'orders'" in schedule["last_error"]
