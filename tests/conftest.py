"""Shared fixtures: a fresh, migrated Postgres database per test.

A template database is migrated once per session; each test gets a copy of
it (CREATE DATABASE ... TEMPLATE is a file copy, much faster than
migrating), so tests never see each other's rows.

Postgres is the one on 127.0.0.1:5432, or EXPORTD_TEST_DATABASE_URL, or,
where neither answers, an embedded server (pgserver) started for the session.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from exportd import database
from exportd.queue.migrations import migrate

pytest_plugins = ["tests.support.fixtures_s3", "tests.support.fixtures_api"]

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def _admin_url(state: Path) -> Iterator[str]:
    """EXPORTD_TEST_DATABASE_URL, else the local server, else an embedded one."""
    configured = os.environ.get("EXPORTD_TEST_DATABASE_URL")
    if configured or asyncio.run(_answers(LOCAL_URL)):
        yield configured or LOCAL_URL
        return
    import pgserver  # only where no Postgres runs

    server = pgserver.get_server(str(state), cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _admin_url(tmp_path_factory.mktemp("postgres"))


def database_url(admin: str, name: str) -> str:
    """``admin`` with its database replaced by ``name`` (query string kept)."""
    base, sep, query = admin.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}{sep}{query}"


async def _admin(admin: str, statement: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_database(admin_url: str) -> Iterator[str]:
    name = f"exportd_tmpl_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        await _admin(admin_url, f"CREATE DATABASE {name}")
        conn = await asyncpg.connect(database_url(admin_url, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(create())
    yield name
    asyncio.run(_admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def dsn(admin_url: str, template_database: str) -> AsyncIterator[str]:
    """The URL of a fresh, migrated database, dropped after the test."""
    name = f"exportd_t_{uuid.uuid4().hex[:12]}"
    await _admin(admin_url, f"CREATE DATABASE {name} TEMPLATE {template_database}")
    yield database_url(admin_url, name)
    await _admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await database.create_pool(dsn, min_size=1, max_size=8)
    yield p
    await p.close()


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await database.connect(dsn)
    yield c
    await c.close()


@pytest.fixture
async def empty_database(admin_url: str) -> AsyncIterator[str]:
    name = f"exportd_empty_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f"CREATE DATABASE {name}")
    yield database_url(admin_url, name)
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    await conn.close()
