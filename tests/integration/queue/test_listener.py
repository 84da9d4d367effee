"""LISTEN/NOTIFY against real Postgres: wake-ups, cancellations, reconnection."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from exportd.queue.listener import Listener
from tests.support.helpers import eventually, insert_job


async def test_listener_wakes_on_new_jobs_and_hears_cancellations(
    dsn: str, pool: asyncpg.Pool
) -> None:
    wakes: list[None] = []
    events: list[tuple[uuid.UUID, str]] = []
    listener = Listener(
        dsn, lambda: wakes.append(None), lambda i, s: events.append((i, s)), keepalive_seconds=0.2
    )
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        before = len(wakes)
        job_id = await insert_job(pool)
        await eventually(lambda: _true(len(wakes) > before), timeout=5)
        await pool.fetchval("SELECT exportd.cancel($1)", job_id)
        await eventually(lambda: _true((job_id, "cancelled") in events), timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_listener_reconnects_after_its_connection_is_killed(
    dsn: str, pool: asyncpg.Pool
) -> None:
    wakes: list[None] = []
    listener = Listener(
        dsn, lambda: wakes.append(None), lambda i, s: None, keepalive_seconds=0.1, max_backoff=0.2
    )
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        # The test's own pool holds one connection, the one asking: every other
        # client of this database is the listener.
        killed = await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        assert killed == 1
        await eventually(lambda: _true(not listener.connected.is_set()), timeout=5)
        await asyncio.wait_for(listener.connected.wait(), 10)
        before = len(wakes)
        await insert_job(pool)
        await eventually(lambda: _true(len(wakes) > before), timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value
