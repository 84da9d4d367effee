"""A whole daemon serving the dashboard, and Chromium to look at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser

from tests.support.browser import chromium
from tests.support.daemon_harness import FAST
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.ui_client import UI_TOKENS


@pytest.fixture
def s3_endpoint(rclone_server: S3Endpoint) -> S3Endpoint:
    return rclone_server


@pytest.fixture
def daemon_settings(s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str) -> Any:
    return s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST, **UI_TOKENS)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched
