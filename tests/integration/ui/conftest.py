"""The dashboard served by the API's app over real Postgres and a real S3 server
(rclone's: the pages' S3 calls are a download link and a delete, which the S3
tests cover on both servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from exportd.api.context import ApiContext
from exportd.definitions.loader import definitions_from_text
from exportd.queue.postgres import PgJobStore
from exportd.s3.client import S3Client
from tests.support.fixtures_api import KINDS, serving
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.ui_client import UI_TOKENS


@pytest.fixture
def s3_endpoint(rclone_server: S3Endpoint) -> S3Endpoint:
    return rclone_server


@pytest.fixture
def ui_ctx(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, s3_client: S3Client
) -> ApiContext:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **UI_TOKENS)
    return ApiContext(
        queue=PgJobStore(pool),
        s3=s3_client,
        settings=settings,
        definitions=definitions_from_text(KINDS),
    )


@pytest.fixture
async def ui(ui_ctx: ApiContext) -> AsyncIterator[str]:
    """The base URL of an app serving the dashboard, tokens of ``UI_TOKENS``."""
    async with serving(ui_ctx) as base:
        yield base
