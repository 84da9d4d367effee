"""Quotas through the HTTP API, over real Postgres and a real S3 server: exactly
``max`` of many concurrent requests get in, the rest are told when to ask again."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from exportd import database
from exportd.api.context import ApiContext
from exportd.definitions.loader import definitions_from_text
from exportd.queue.postgres import PgJobStore
from tests.support.fixtures_api import AUTH, KINDS, call, serving

QUOTA_KINDS = (
    KINDS
    + """
[kinds.full]
description = "Everything an owner has: once a day"
query = "SELECT 1 AS id WHERE :owner <> ''"
[kinds.full.quota]
max = 1
per = "P1D"
"""
)


@pytest.fixture
async def quota_api(api_ctx: ApiContext, dsn: str) -> AsyncIterator[str]:
    # A connection per request, so that the 20 requests really race in the database.
    pool = await database.create_pool(dsn, min_size=2, max_size=21)
    ctx = ApiContext(
        queue=PgJobStore(pool),
        s3=api_ctx.s3,
        settings=api_ctx.settings,
        definitions=definitions_from_text(QUOTA_KINDS),
    )
    try:
        async with serving(ctx) as base:
            yield base
    finally:
        await pool.close()


async def post(
    session: aiohttp.ClientSession, url: str, body: object
) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with session.post(url, json=body, headers=AUTH) as response:
        return response.status, await response.json(), dict(response.headers)


async def test_twenty_concurrent_posts_let_exactly_one_in(
    quota_api: str, pool: asyncpg.Pool
) -> None:
    url = f"{quota_api}/v1/jobs"
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(post(session, url, {"owner": "alice", "kind": "full"}) for _ in range(20))
        )
        other = await post(session, url, {"owner": "bob", "kind": "full"})
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [202] + [429] * 19
    assert other[0] == 202
    accepted = next(body for status, body, _ in answers if status == 202)
    retry_at = datetime.fromisoformat(accepted["created_at"]) + timedelta(days=1)
    for status, body, headers in answers:
        if status != 429:
            continue
        assert body["error"] == "quota_exceeded"
        assert "at most 1 export per P1D" in body["message"]
        assert datetime.fromisoformat(body["retry_at"]) == retry_at
        assert body["retry_at"].endswith("Z")
        seconds = int(headers["Retry-After"])
        now = await pool.fetchval("SELECT now()")
        assert seconds == pytest.approx(math.ceil((retry_at - now).total_seconds()), abs=5)
    count = "SELECT count(*) FROM exportd.jobs WHERE owner = $1 AND kind = 'full'"
    assert await pool.fetchval(count, "alice") == 1


async def test_a_dedupe_hit_is_not_refused_and_other_kinds_are_free(quota_api: str) -> None:
    url = f"{quota_api}/v1/jobs"
    body = {"owner": "alice", "kind": "full", "dedupe_key": "button"}
    first, _, _ = await call("POST", url, AUTH, json=body)
    again, doc, _ = await call("POST", url, AUTH, json=body)
    assert (first, again) == (202, 409)
    assert doc["error"] == "duplicate"
    other, _, _ = await call("POST", url, AUTH, json={"owner": "alice", "kind": "everything"})
    assert other == 202
    refused, doc, _ = await call("POST", url, AUTH, json={"owner": "alice", "kind": "full"})
    assert refused == 429


async def test_kinds_show_their_quota(quota_api: str) -> None:
    status, doc, _ = await call("GET", f"{quota_api}/v1/kinds", AUTH)
    assert status == 200
    quotas = {kind["name"]: kind["quota"] for kind in doc["kinds"]}
    assert quotas["full"] == {"max": 1, "per": "P1D", "per_seconds": 86400.0}
    assert quotas["everything"] is None
    _, spec, _ = await call("GET", f"{quota_api}/v1/openapi.json", AUTH)
    post_responses = spec["paths"]["/v1/jobs"]["post"]["responses"]
    assert "Retry-After" in post_responses["429"]["headers"]
    kind_items = spec["paths"]["/v1/kinds"]["get"]["responses"]["200"]["content"]
    item = kind_items["application/json"]["schema"]["properties"]["kinds"]["items"]
    assert item["properties"]["quota"]["required"] == ["max", "per", "per_seconds"]
