"""Small helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from exportd import database
from tests.support.daemon_harness import TOKEN
from tests.support.fixtures_s3 import S3Endpoint, s3_env

ROOT = Path(__file__).resolve().parents[2]


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


async def add_history(conn: asyncpg.Connection, rows: int = 20000, owners: int = 100) -> None:
    """Many finished jobs and fresh statistics: a table where the planner
    prefers an index to reading everything, as in production."""
    await conn.execute(
        "INSERT INTO exportd.jobs (owner, kind, state, attempts)"
        " SELECT 'o' || (g % $2), 'k', 'completed', 1 FROM generate_series(1, $1) AS g",
        rows,
        owners,
    )
    await conn.execute("ANALYZE exportd.jobs")


def plan_nodes(plan: Any) -> list[dict[str, Any]]:
    """Every node of an EXPLAIN (FORMAT JSON) plan, as read by asyncpg (text or decoded)."""
    found: list[dict[str, Any]] = []
    stack = [(json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.get("Plans", []))
    return found


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


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without any EXPORTD_* setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTD_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(settings)
    return env


async def exportd(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the command line as a user would, in its own process."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "exportd", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def healthy(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/healthz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def api_get(port: int, path: str) -> tuple[int, Any]:
    """GET an API route with the test token: the status and the JSON body."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response,
    ):
        return response.status, await response.json()


async def download(url: str) -> tuple[bytes, Any]:
    """What a browser gets from a presigned URL: the body and the headers."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.read(), response.headers


async def download_job(port: int, job_id: uuid.UUID) -> tuple[bytes, Any]:
    """A completed job's file, through the API's fresh presigned URL."""
    status, doc = await api_get(port, f"/v1/jobs/{job_id}")
    assert status == 200, doc
    return await download(doc["download_url"])


async def direct_export(dsn: str, query: str) -> tuple[bytes, list[asyncpg.Record]]:
    """What COPY produces for ``query`` with an export's session settings, and its rows."""
    conn = await database.connect(dsn)
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    try:
        await conn.execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'"
        )
        await conn.copy_from_query(query, output=sink, format="csv", header=True)
        rows = await conn.fetch(query)
    finally:
        await conn.close()
    return b"".join(chunks), rows


async def job_count(dsn: str) -> int:
    """How many jobs the queue holds, in any state."""
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM exportd.jobs")
    finally:
        await conn.close()
    return count


def deployment_env(
    tmp_path: Path, dsn: str, endpoint: S3Endpoint, bucket: str, definitions: str
) -> dict[str, str]:
    """Settings of a whole deployment: database, ``definitions`` and bucket."""
    (tmp_path / "kinds.toml").write_text(definitions)
    return clean_env(
        EXPORTD_DATABASE_URL=dsn,
        EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"),
        **s3_env(endpoint, bucket),
    )
