"""Job options through the API, against real Postgres: POST /v1/jobs (every problem of
params and options in one 400, locks, time zones Postgres knows), the job's view, retry,
GET /v1/kinds and schedules."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from exportd.api.context import ApiContext
from exportd.definitions.loader import definitions_from_text
from tests.support.fixtures_api import AUTH, call, serving
from tests.support.helpers import job_row

KINDS = """
[kinds.orders]
query = "SELECT 1 AS id, now() AS placed_at WHERE :owner <> '' AND :since::date IS NOT NULL"
locked_options = ["csv.delimiter"]
[kinds.orders.params.since]
type = "date"
[kinds.orders.options]
csv = { delimiter = ";" }
[kinds.orders.labels]
placed_at = "Order date"
"""


@pytest.fixture
async def api(api_ctx: ApiContext) -> AsyncIterator[str]:
    api_ctx.definitions = definitions_from_text(KINDS)
    async with serving(api_ctx) as base:
        yield base


async def post_job(api: str, **fields: Any) -> tuple[int, Any]:
    body = {"owner": "u1", "kind": "orders", "params": {"since": "2025-01-01"}, **fields}
    status, answer, _ = await call("POST", f"{api}/v1/jobs", AUTH, json=body)
    return status, answer


async def test_params_and_options_problems_come_in_one_400(api: str) -> None:
    status, body = await post_job(
        api,
        params={"since": "soon"},
        options={"csv": {"profile": "csv", "bom": 1}, "split_rows": 0, "zone": "UTC"},
    )
    assert status == 400, body
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert set(fields) == {
        "params.since",
        "options.csv.profile",
        "options.csv.bom",
        "options.split_rows",
        "options.zone",
    }
    assert "known: timezone, columns, csv, json, split_rows" in fields["options.zone"]


async def test_a_job_created_with_options_is_shown_with_them(api: str, pool: asyncpg.Pool) -> None:
    options = {"timezone": "Asia/Kolkata", "csv": {"profile": "excel"}, "columns": ["id"]}
    status, body = await post_job(api, options=options)
    assert status == 202, body
    assert body["options"] == options
    row = await job_row(pool, uuid.UUID(body["id"]))
    assert row["options"] == options
    status, shown, _ = await call("GET", f"{api}/v1/jobs/{body['id']}", AUTH)
    assert (status, shown["options"]) == (200, options)
    status, listing, _ = await call("GET", f"{api}/v1/jobs?owner=u1", AUTH)
    assert [j["options"] for j in listing["jobs"]] == [options]


async def test_a_job_without_options_stores_an_empty_object(api: str, pool: asyncpg.Pool) -> None:
    status, body = await post_job(api)
    assert status == 202, body
    assert body["options"] == {}


async def test_a_locked_option_is_refused_unless_it_keeps_the_kinds_value(api: str) -> None:
    status, body = await post_job(api, options={"csv": {"delimiter": ","}})
    assert status == 400
    [error] = body["errors"]
    assert error["field"] == "options.csv.delimiter"
    assert "locked by kind 'orders'" in error["message"]
    status, body = await post_job(api, options={"csv": {"delimiter": ";"}})
    assert status == 202, body


async def test_a_time_zone_postgres_does_not_know_is_refused(api: str) -> None:
    status, body = await post_job(api, options={"timezone": "Mars/Olympus"})
    assert status == 400
    assert body["errors"][0]["field"] == "options.timezone"
    assert "not a time zone the database knows" in body["errors"][0]["message"]
    status, body = await post_job(api, options={"timezone": "America/New_York"})
    assert status == 202, body


async def test_retry_keeps_a_jobs_options(api: str, pool: asyncpg.Pool) -> None:
    options = {"csv": {"header": False}, "split_rows": 10}
    status, body = await post_job(api, options=options)
    assert status == 202
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'failed', finished_at = now(),"
        " error_kind = 'query_error', error = 'x' WHERE id = $1",
        uuid.UUID(body["id"]),
    )
    status, retried, _ = await call("POST", f"{api}/v1/jobs/{body['id']}/retry", AUTH)
    assert status == 202, retried
    assert retried["state"] == "pending"
    assert retried["options"] == options


async def test_kinds_show_their_options_locks_labels_and_schema(api: str) -> None:
    status, body, _ = await call("GET", f"{api}/v1/kinds", AUTH)
    assert status == 200
    [kind] = body["kinds"]
    assert kind["options"]["csv"]["delimiter"] == ";"
    assert kind["options"]["json"] == {"big_numbers": "number"}
    assert kind["locked_options"] == ["csv.delimiter"]
    assert kind["labels"] == {"placed_at": "Order date"}
    schema = kind["options_schema"]
    assert schema["x-exportd-locked"] == ["csv.delimiter"]
    assert schema["properties"]["csv"]["properties"]["delimiter"]["default"] == ";"


async def test_a_schedule_takes_options_checked_as_a_jobs(api: str, pool: asyncpg.Pool) -> None:
    schedule = {
        "owner": "u1",
        "kind": "orders",
        "cron": "0 8 * * *",
        "params": {"since": "2025-01-01"},
    }
    status, body, _ = await call(
        "POST",
        f"{api}/v1/schedules",
        AUTH,
        json={**schedule, "options": {"csv": {"delimiter": "|"}, "json": {"big_numbers": "x"}}},
    )
    assert status == 400
    assert {e["field"] for e in body["errors"]} == {
        "options.csv.delimiter",
        "options.json.big_numbers",
    }
    options = {"timezone": "Europe/Zurich", "json": {"big_numbers": "string"}}
    status, body, _ = await call(
        "POST", f"{api}/v1/schedules", AUTH, json={**schedule, "options": options}
    )
    assert status == 201, body
    assert body["options"] == options
    status, body, _ = await call(
        "PATCH", f"{api}/v1/schedules/{body['id']}", AUTH, json={"options": {"split_rows": -1}}
    )
    assert status == 400
    assert body["errors"][0]["field"] == "options.split_rows"
