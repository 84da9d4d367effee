"""The client's tests run against a real `exportd run`, real Postgres and a real
S3 server (rclone), with the repository's own fixtures: one migrated database
per session (from the suite's template), one bucket, one daemon. Each test
uses owners of its own, so tests share the daemon but never each other's jobs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest
from client_support import Exportd

from tests.conftest import _admin, admin_url, conn, database_url, dsn, template_database
from tests.support.daemon_harness import TOKEN
from tests.support.daemon_process import daemon_env, daemon_process
from tests.support.fixtures_s3 import (
    S3Endpoint,
    create_bucket,
    free_port,
    rclone_server,
)

# The suite's fixtures, used here by name.
__all__ = ["admin_url", "conn", "dsn", "rclone_server", "template_database"]

# The kinds the daemon runs: rows of public.ledger for the job's owner; the same
# with a required date parameter; a query on a table that does not exist (fails
# for good, query_error); and a kind with a quota of one job per owner a day.
KINDS = '''
[kinds.ledger]
description = "An owner's ledger entries"
query = "SELECT id, amount FROM public.ledger WHERE owner = :owner ORDER BY id"

[kinds.dated]
query = """
SELECT id, amount FROM public.ledger
WHERE owner = :owner AND :since::date IS NOT NULL ORDER BY id
"""
[kinds.dated.params.since]
type = "date"
required = true

[kinds.broken]
query = "SELECT id FROM public.no_such_table WHERE owner = :owner"

[kinds.limited]
query = "SELECT id FROM public.ledger WHERE owner = :owner ORDER BY id"
[kinds.limited.quota]
max = 1
per = "P1D"
'''

LEDGER = """
CREATE TABLE public.ledger (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner text NOT NULL,
    amount numeric NOT NULL
)
"""


async def _create(admin: str, template: str, name: str) -> str:
    await _admin(admin, f"CREATE DATABASE {name} TEMPLATE {template}")
    dsn = database_url(admin, name)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(LEDGER)
    finally:
        await conn.close()
    return dsn


def _ready(url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"exportd did not become ready; its log:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def exportd(
    admin_url: str,
    template_database: str,
    rclone_server: S3Endpoint,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Exportd]:
    name = f"exportd_client_{uuid.uuid4().hex[:12]}"
    dsn = asyncio.run(_create(admin_url, template_database, name))
    bucket = create_bucket(rclone_server)
    port = free_port()
    where = tmp_path_factory.mktemp("exportd")
    env = daemon_env(where, KINDS, dsn, rclone_server, bucket, port, api_tokens=TOKEN)
    try:
        with daemon_process(env, where) as log:
            url = f"http://127.0.0.1:{port}"
            _ready(url, log)
            yield Exportd(url, dsn, bucket, rclone_server)
    finally:
        asyncio.run(_admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def owner() -> str:
    """An owner of this test's own."""
    return f"acme-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def ledger(exportd: Exportd, owner: str) -> list[str]:
    """Three ledger rows of ``owner``; the lines a CSV export of them holds."""
    conn = await asyncpg.connect(exportd.dsn)
    try:
        rows = await conn.fetch(
            "INSERT INTO public.ledger (owner, amount)"
            " SELECT $1, a FROM unnest($2::numeric[]) AS a RETURNING id, amount",
            owner,
            [Decimal("9.5"), Decimal("1"), Decimal("-2.25")],
        )
    finally:
        await conn.close()
    return ["id,amount", *(f"{r['id']},{r['amount']}" for r in rows)]
