"""The API served on a free loopback port, over real Postgres and a real S3 server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from exportd.api.app import start_api
from exportd.api.context import ApiContext
from exportd.definitions.loader import definitions_from_text
from exportd.queue.postgres import PgJobStore
from exportd.s3.client import S3Client
from tests.support.daemon_harness import TOKEN
from tests.support.fixtures_s3 import S3Endpoint, s3_settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}

KINDS = """
[kinds.orders]
description = "A customer's orders since a day"
query = "SELECT 1 AS id WHERE :owner <> '' AND :since::date IS NOT NULL"
[kinds.orders.params.since]
type = "date"
required = true

[kinds.everything]
query = "SELECT 1 AS id WHERE :owner <> ''"

[kinds.bundle.datasets.first]
query = "SELECT 1 AS id WHERE :owner <> ''"
[kinds.bundle.datasets.second]
query = "SELECT 2 AS id"
"""


@contextlib.asynccontextmanager
async def serving(ctx: ApiContext) -> AsyncIterator[str]:
    runner, port = await start_api(ctx, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def call(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    *,
    json: Any = None,
    data: bytes | None = None,
) -> tuple[int, Any, Any]:
    """One request, redirects not followed; the answer must be JSON."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, url, headers=headers or {}, json=json, data=data, allow_redirects=False
        ) as response,
    ):
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json(), response.headers


@pytest.fixture
def api_ctx(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, s3_client: S3Client
) -> ApiContext:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, api_tokens=TOKEN)
    return ApiContext(
        queue=PgJobStore(pool),
        s3=s3_client,
        settings=settings,
        definitions=definitions_from_text(KINDS),
    )


@pytest.fixture
async def api(api_ctx: ApiContext) -> AsyncIterator[str]:
    """The base URL of the API serving ``api_ctx``."""
    async with serving(api_ctx) as base:
        yield base
