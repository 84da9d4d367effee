"""``make screenshots``: the dashboard's pictures for the docs, from a real daemon.

Starts an S3 server (rclone) and a fresh database on the local Postgres,
runs a daemon in-process on the demo data with two more kinds (a slow one,
to show progress bars, and one that fails), makes jobs of each, and has
headless Chromium log in and capture the overview, the jobs list and a
failed job's page as PNG files.

    python -m tests.support.screenshots docs/img
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

from exportd import database
from exportd.definitions.loader import definitions_from_text
from exportd.queue.migrations import create_database, migrate
from exportd.queue.postgres import PgJobStore
from tests.support.browser import chromium, log_in
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import (
    ACCESS_KEY,
    SECRET_KEY,
    S3Endpoint,
    create_bucket,
    find_binary,
    free_port,
    run_server,
    s3_settings,
)
from tests.support.helpers import eventually, insert_job

SERVER = "postgresql://postgres@localhost:5432/postgres"
TOKEN = "screenshots-admin-token-0123456789"

EXTRA_KINDS = """
[kinds.ledger]
description = "The ledger of an account (its table is missing: every job fails)"
query = "SELECT * FROM exportd_demo.ledger WHERE account = :owner"

[kinds.archive]
description = "Everything, slowly"
query = '''
SELECT g AS n, repeat('x', 20000) AS pad, pg_sleep(0.1)::text AS nap
FROM generate_series(1, 3000) AS g
WHERE :owner <> ''
'''
"""


@contextlib.contextmanager
def s3_server(folder: Path) -> Any:
    (folder / "data").mkdir()
    (folder / "rclone.conf").touch()
    port = free_port()
    argv = [
        find_binary("rclone"),
        "serve",
        "s3",
        "--config",
        str(folder / "rclone.conf"),
        "--addr",
        f"127.0.0.1:{port}",
        "--auth-key",
        f"{ACCESS_KEY},{SECRET_KEY}",
        str(folder / "data"),
    ]
    url = f"http://127.0.0.1:{port}"
    with run_server("rclone serve s3", argv, url, folder / "rclone.log"):
        yield S3Endpoint("rclone", url, ACCESS_KEY, SECRET_KEY)


async def demo_database(name: str) -> str:
    conn = await database.connect(SERVER, timeout=10)
    try:
        await create_database(conn, name)
    finally:
        await conn.close()
    url = SERVER.rsplit("/", 1)[0] + f"/{name}"
    conn = await database.connect(url, timeout=10)
    try:
        await migrate(conn)
        await conn.execute(resources.files("exportd.demo").joinpath("data.sql").read_text())
    finally:
        await conn.close()
    return url


async def make_jobs(pool: asyncpg.Pool) -> uuid.UUID:
    """Completed, running, pending and failed jobs; the id of a failed one."""
    for owner in ("alice", "bob", "chloé"):
        for since in ("2024-01-01", "2024-02-01", "2024-03-01"):
            await insert_job(pool, owner=owner, kind="orders", params={"since": since})
    failed = await insert_job(pool, owner="alice", kind="ledger", max_attempts=1)
    await insert_job(pool, owner="bob", kind="ledger", max_attempts=1)
    for owner in ("alice", "bob"):
        await insert_job(pool, owner=owner, kind="archive")
    await insert_job(pool, owner="chloé", kind="orders", run_after_offset=3600)
    await PgJobStore(pool).pause_kind(
        "orders-report", paused_by="ui:3f9a1c2b7d4e", reason="reporting database upgrade"
    )
    await insert_job(
        pool,
        owner="bob",
        kind="orders-report",
        params={"start": "2024-01-01", "end": "2024-02-01"},
    )
    return failed


async def capture(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    name = f"exportd_screens_{uuid.uuid4().hex[:8]}"
    url = await demo_database(name)
    demo = resources.files("exportd.demo").joinpath("definitions.toml").read_text("utf-8")
    definitions = definitions_from_text(demo + EXTRA_KINDS)
    try:
        with tempfile.TemporaryDirectory() as folder, s3_server(Path(folder)) as s3:
            settings = s3_settings(
                s3,
                create_bucket(s3),
                database_url=url,
                **{**FAST, "concurrency": 3},
                ui_admin_tokens=TOKEN,
            )
            async with running_daemon(settings, definitions) as daemon:
                pool = await database.create_pool(url, min_size=1, max_size=2)
                try:
                    failed = await make_jobs(pool)
                    await daemon_busy(pool)
                    await shoot(daemon.api_port, failed, out)
                finally:
                    await pool.close()
    finally:
        conn = await database.connect(SERVER, timeout=10)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def daemon_busy(pool: asyncpg.Pool) -> None:
    """Wait for the picture to be worth taking: the quick jobs done, the slow ones moving."""

    async def ready() -> bool:
        row = await pool.fetchrow(
            "SELECT count(*) FILTER (WHERE state = 'completed') AS done,"
            " count(*) FILTER (WHERE state = 'failed') AS failed,"
            " count(*) FILTER (WHERE state = 'processing' AND progress >= 3) AS moving"
            " FROM exportd.jobs"
        )
        assert row is not None
        return bool(row["done"] >= 9 and row["failed"] >= 2 and row["moving"] >= 1)

    await eventually(ready, timeout=120, interval=0.5)


async def shoot(port: int, failed: uuid.UUID, out: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1360, "height": 900})
        await log_in(page, base, TOKEN)
        for path, file in (
            ("/ui/", "dashboard-overview.png"),
            ("/ui/jobs", "dashboard-jobs.png"),
            (f"/ui/jobs/{failed}", "dashboard-failed-job.png"),
        ):
            await page.goto(f"{base}{path}")
            await page.screenshot(path=str(out / file), full_page=True)
            print(out / file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNG files")
    asyncio.run(capture(parser.parse_args().out))


if __name__ == "__main__":
    main()
