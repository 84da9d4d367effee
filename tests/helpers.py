"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg


async def insert_job(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    owner: str = "user_1",
    kind: str = "orders",
    params: dict[str, Any] | None = None,
    fmt: str = "csv",
    priority: int = 0,
    max_attempts: int = 5,
    run_after_offset: float = 0.0,
) -> uuid.UUID:
    """Insert a job the way the main application does: a plain INSERT."""
    job_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO exportd.jobs (owner, kind, params, format, priority, max_attempts, run_after)"
        " VALUES ($1, $2, $3::jsonb, $4, $5, $6, now() + make_interval(secs => $7))"
        " RETURNING id",
        owner,
        kind,
        params or {},
        fmt,
        priority,
        max_attempts,
        run_after_offset,
    )
    return job_id


async def job_row(conn: asyncpg.Connection | asyncpg.Pool, job_id: uuid.UUID) -> Any:
    return await conn.fetchrow("SELECT * FROM exportd.jobs WHERE id = $1", job_id)


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def wait_for_state(
    conn: asyncpg.Connection | asyncpg.Pool,
    job_id: uuid.UUID,
    states: set[str],
    timeout: float = 30.0,
) -> Any:
    async def check() -> Any:
        row = await job_row(conn, job_id)
        return row if row["state"] in states else None

    return await eventually(check, timeout=timeout)
