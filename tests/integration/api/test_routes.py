"""The /v1 job routes against real Postgres and a real S3 server."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest

from exportd.api.context import ApiContext
from exportd.queue.postgres import PgJobStore
from exportd.queue.sql import queries
from exportd.s3.client import S3Client
from tests.support.fixtures_api import AUTH, call
from tests.support.helpers import insert_job, job_row

SCOPED_U1 = {**AUTH, "X-Exportd-Owner": "u1"}


async def completed_job(
    pool: asyncpg.Pool,
    s3: S3Client,
    bucket: str,
    *,
    owner: str = "u1",
    body: bytes = b"id\n1\n",
    expires_in: str = "1 hour",
) -> tuple[uuid.UUID, str]:
    """A completed job whose object really is in the bucket."""
    job_id = await insert_job(pool, owner=owner, kind="orders")
    key = f"exports/{owner}/{job_id}/orders ü.csv"
    await s3.put_object(Bucket=bucket, Key=key, Body=body)
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'completed', object_key = $2, size_bytes = $3,"
        " finished_at = now(), expires_at = now() + $4::text::interval, progress = 100"
        " WHERE id = $1",
        job_id,
        key,
        len(body),
        expires_in,
    )
    return job_id, key


async def object_exists(s3: S3Client, bucket: str, key: str) -> bool:
    listed = await s3.list_objects_v2(Bucket=bucket, Prefix=key)
    return any(o["Key"] == key for o in listed.get("Contents", []))


# --- POST /v1/jobs -----------------------------------------------------------------------


async def test_enqueue_answers_202_with_the_job_and_its_location(
    api: str, pool: asyncpg.Pool
) -> None:
    status, body, headers = await call(
        "POST",
        f"{api}/v1/jobs",
        AUTH,
        json={
            "owner": "u1",
            "kind": "orders",
            "params": {"since": "2025-01-01"},
            "priority": 3,
            "run_after": "2030-01-01T00:00:00Z",
            "max_attempts": 2,
        },
    )
    assert status == 202, body
    assert headers["Location"] == f"/v1/jobs/{body['id']}"
    row = await job_row(pool, uuid.UUID(body["id"]))
    assert (row["state"], row["owner"], row["kind"], row["format"]) == (
        "pending",
        "u1",
        "orders",
        "csv",
    )
    assert (row["params"], row["priority"], row["max_attempts"]) == ({"since": "2025-01-01"}, 3, 2)
    assert row["run_after"].year == 2030
    assert body["state"] == "pending"


async def test_enqueue_reports_every_problem_at_once(api: str, pool: asyncpg.Pool) -> None:
    status, body, _ = await call(
        "POST",
        f"{api}/v1/jobs",
        AUTH,
        json={
            "kind": "orders",
            "params": {"since": "yesterday", "until": "x"},
            "format": "xml",
            "priority": 99999,
            "max_attempts": True,
            "run_after": "2030-01-01T00:00:00",
            "dedupe_key": "",
            "colour": "blue",
        },
    )
    assert status == 400
    assert body["error"] == "invalid_request"
    fields = sorted(e["field"] for e in body["errors"])
    assert fields == [
        "colour",
        "dedupe_key",
        "format",
        "max_attempts",
        "owner",
        "params.since",
        "params.until",
        "priority",
        "run_after",
    ]
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 0


async def test_enqueue_of_an_unknown_kind_lists_the_known_ones(api: str) -> None:
    status, body, _ = await call(
        "POST", f"{api}/v1/jobs", AUTH, json={"owner": "u1", "kind": "ordres"}
    )
    assert status == 400
    [error] = body["errors"]
    assert error["field"] == "kind"
    assert "everything, orders" in error["message"]


async def test_a_bundle_is_refused_a_single_file_format_and_defaults_to_zip(
    api: str, pool: asyncpg.Pool
) -> None:
    job = {"owner": "u1", "kind": "bundle"}
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, json={**job, "format": "jsonl"})
    assert status == 400
    [error] = body["errors"]
    assert (error["field"], error["message"]) == ("format", "must be one of zip, xlsx")
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, json=job)
    assert status == 202, body
    assert (await job_row(pool, uuid.UUID(body["id"])))["format"] == "zip"


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b"[1, 2]", b"\xff\xfe", b""],
    ids=["broken", "array", "not-utf8", "empty"],
)
async def test_enqueue_refuses_a_body_that_is_no_json_object(api: str, payload: bytes) -> None:
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, data=payload)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_a_second_live_job_with_the_same_dedupe_key_is_answered_409(
    api: str, pool: asyncpg.Pool
) -> None:
    job = {"owner": "u1", "kind": "everything", "dedupe_key": "button"}
    first_status, first, _ = await call("POST", f"{api}/v1/jobs", AUTH, json=job)
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, json=job)
    assert first_status == 202
    assert status == 409
    assert body["error"] == "duplicate"
    assert body["job"]["id"] == first["id"]
    # Another owner, or the same key once the first job ended, is a new job.
    other = await call("POST", f"{api}/v1/jobs", AUTH, json={**job, "owner": "u2"})
    assert other[0] == 202
    await pool.execute("SELECT exportd.cancel($1)", uuid.UUID(first["id"]))
    again = await call("POST", f"{api}/v1/jobs", AUTH, json=job)
    assert again[0] == 202
    assert again[1]["id"] != first["id"]


async def test_text_postgres_cannot_store_is_refused_not_crashed_on(api: str) -> None:
    # A NUL character and a lone surrogate are valid JSON; Postgres takes neither.
    body = b'{"owner": "a\\u0000b", "kind": "everything", "dedupe_key": "\\ud800"}'
    status, answer, _ = await call("POST", f"{api}/v1/jobs", AUTH, data=body)
    assert status == 400, answer
    assert sorted(e["field"] for e in answer["errors"]) == ["dedupe_key", "owner"]
    status, answer, _ = await call("GET", f"{api}/v1/jobs?owner=a%00b&kind=x%00", AUTH)
    assert status == 400, answer
    assert sorted(e["field"] for e in answer["errors"]) == ["kind", "owner"]
    status, answer, _ = await call("GET", f"{api}/v1/jobs?owner_scope=%00", AUTH)
    assert (status, answer["errors"][0]["field"]) == (400, "owner_scope")


# --- GET /v1/jobs ------------------------------------------------------------------------


async def test_listing_pages_through_an_owners_jobs_newest_first(
    api: str, pool: asyncpg.Pool
) -> None:
    ids = [await insert_job(pool, owner="u1") for _ in range(7)]
    # Equal creation times are ordered by id: the keyset must not skip nor repeat.
    await pool.execute(
        "UPDATE exportd.jobs SET created_at = '2025-01-01T00:00:00Z' WHERE id = ANY($1)", ids[2:5]
    )
    await insert_job(pool, owner="u2")
    expected = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM exportd.jobs WHERE owner = 'u1' ORDER BY created_at DESC, id DESC"
        )
    ]
    seen: list[uuid.UUID] = []
    url: str | None = f"{api}/v1/jobs?owner=u1&limit=3"
    pages = 0
    while url is not None:
        status, body, _ = await call("GET", url, AUTH)
        assert status == 200, body
        seen.extend(uuid.UUID(j["id"]) for j in body["jobs"])
        pages += 1
        cursor = body["next_cursor"]
        url = None if cursor is None else f"{api}/v1/jobs?owner=u1&limit=3&cursor={cursor}"
    assert seen == expected
    assert pages == 3


@pytest.mark.parametrize("deep", [False, True], ids=["first-page", "with-cursor"])
@pytest.mark.parametrize(
    ("statement", "owner", "index"),
    [
        ("api_list_jobs", "owner_7", "jobs_owner_created_idx"),
        # The operator's list, every owner's jobs (the dashboard's).
        ("api_list_all_jobs", None, "jobs_created_idx"),
    ],
    ids=["owner", "every-owner"],
)
async def test_a_page_is_read_in_index_order_without_sorting(
    conn: asyncpg.Connection, deep: bool, statement: str, owner: str | None, index: str
) -> None:
    await conn.execute(
        "INSERT INTO exportd.jobs (owner, kind, state, created_at)"
        " SELECT 'owner_' || (g % 50), 'orders', 'completed', now() - g * interval '1 second'"
        " FROM generate_series(1, 20000) AS g"
    )
    await conn.execute("ANALYZE exportd.jobs")
    # The plan the pool's prepared statement ends up with, whatever the arguments.
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    cursor = (datetime.now(UTC), uuid.uuid4()) if deep else (None, None)
    [plan] = await conn.fetchval(
        "EXPLAIN (FORMAT JSON) " + queries()[statement],
        owner,
        ["completed"],
        None,
        None,
        None,
        *cursor,
        51,
        None,
    )
    # The LIMIT reads straight off the index: no sort of the owner's jobs.
    limit = plan["Plan"]
    [scan] = limit["Plans"]
    assert (limit["Node Type"], scan["Node Type"]) == ("Limit", "Index Scan"), plan
    assert scan["Index Name"] == index


async def test_listing_filters_by_state_kind_and_creation_time(
    api: str, pool: asyncpg.Pool
) -> None:
    old = await insert_job(pool, owner="u1", kind="orders")
    await pool.execute(
        "UPDATE exportd.jobs SET created_at = '2024-06-01T00:00:00Z' WHERE id = $1", old
    )
    recent = await insert_job(pool, owner="u1", kind="orders")
    other_kind = await insert_job(pool, owner="u1", kind="everything")
    cancelled = await insert_job(pool, owner="u1", kind="orders")
    await pool.execute("SELECT exportd.cancel($1)", cancelled)

    async def listed(query: str) -> set[uuid.UUID]:
        status, body, _ = await call("GET", f"{api}/v1/jobs?owner=u1&{query}", AUTH)
        assert status == 200, body
        return {uuid.UUID(j["id"]) for j in body["jobs"]}

    assert await listed("state=pending") == {old, recent, other_kind}
    assert await listed("state=pending&state=cancelled&kind=orders") == {old, recent, cancelled}
    assert await listed("created_before=2025-01-01T00:00:00Z") == {old}
    assert await listed("created_after=2025-01-01T00:00:00%2B01:00&kind=everything") == {other_kind}
    assert await listed("error_kind=cancelled") == {cancelled}
    assert await listed("error_kind=timeout&error_kind=cancelled&kind=everything") == set()


async def test_listing_reports_every_bad_parameter(api: str) -> None:
    status, body, _ = await call(
        "GET",
        f"{api}/v1/jobs?state=done&limit=0&created_after=yesterday&cursor=abc&sort=asc",
        AUTH,
    )
    assert status == 400
    fields = sorted(e["field"] for e in body["errors"])
    assert fields == ["created_after", "cursor", "limit", "owner", "sort", "state"]


# --- Owner scope --------------------------------------------------------------------------


async def test_another_owners_job_is_answered_like_an_unknown_one(
    api: str, pool: asyncpg.Pool, s3_client: S3Client, s3_bucket: str
) -> None:
    theirs, _ = await completed_job(pool, s3_client, s3_bucket, owner="u2")
    unknown = uuid.uuid4()
    for method, suffix in (("GET", ""), ("GET", "/download"), ("DELETE", "")):
        answers = []
        for job_id in (theirs, unknown):
            status, body, _ = await call(method, f"{api}/v1/jobs/{job_id}{suffix}", SCOPED_U1)
            answers.append((status, body["error"], body["message"].replace(str(job_id), "ID")))
        assert answers[0] == answers[1] == (404, "not_found", "no job 'ID'"), (method, suffix)
        # The same request through the query parameter, and without a scope.
        status, _, _ = await call(method, f"{api}/v1/jobs/{theirs}{suffix}?owner_scope=u1", AUTH)
        assert status == 404
    assert (await call("GET", f"{api}/v1/jobs/{theirs}", AUTH))[0] == 200
    assert (await job_row(pool, theirs))["state"] == "completed"


async def test_the_owner_scope_confines_listing_and_enqueueing(
    api: str, pool: asyncpg.Pool
) -> None:
    mine = await insert_job(pool, owner="u1")
    await insert_job(pool, owner="u2")
    status, body, _ = await call("GET", f"{api}/v1/jobs", SCOPED_U1)
    assert status == 200
    assert [j["id"] for j in body["jobs"]] == [str(mine)]
    status, body, _ = await call("GET", f"{api}/v1/jobs?owner=u2", SCOPED_U1)
    assert (status, [e["field"] for e in body["errors"]]) == (400, ["owner"])

    status, body, _ = await call("POST", f"{api}/v1/jobs", SCOPED_U1, json={"kind": "everything"})
    assert (status, body["owner"]) == (202, "u1")
    status, body, _ = await call(
        "POST", f"{api}/v1/jobs", SCOPED_U1, json={"kind": "everything", "owner": "u2"}
    )
    assert (status, [e["field"] for e in body["errors"]]) == (400, ["owner"])
    status, body, _ = await call("GET", f"{api}/v1/jobs?owner_scope=u2", SCOPED_U1)
    assert (status, [e["field"] for e in body["errors"]]) == (400, ["owner_scope"])


# --- DELETE /v1/jobs/{id} ----------------------------------------------------------------


async def test_delete_cancels_pending_and_processing_jobs(
    api: str, api_ctx: ApiContext, pool: asyncpg.Pool
) -> None:
    running = await insert_job(pool, kind="orders")
    [claimed] = await PgJobStore(pool).claim("w1", 1, 30)
    assert claimed.id == running
    pending = await insert_job(pool, kind="orders")

    for job_id in (pending, running):
        status, body, _ = await call("DELETE", f"{api}/v1/jobs/{job_id}", AUTH)
        assert (status, body["state"], body["error_kind"]) == (200, "cancelled", "cancelled")
        assert (await job_row(pool, job_id))["state"] == "cancelled"
    # Pending jobs are counted here; a running job by the worker that stops it.
    assert api_ctx.metrics.value("exportd_jobs_cancelled_total", {"kind": "orders"}) == 1

    status, body, _ = await call("DELETE", f"{api}/v1/jobs/{pending}", AUTH)
    assert (status, body["error"], body["job"]["state"]) == (409, "conflict", "cancelled")


async def test_delete_of_a_completed_export_deletes_its_object(
    api: str, pool: asyncpg.Pool, s3_client: S3Client, s3_bucket: str
) -> None:
    job_id, key = await completed_job(pool, s3_client, s3_bucket)
    assert await object_exists(s3_client, s3_bucket, key)
    status, body, _ = await call("DELETE", f"{api}/v1/jobs/{job_id}", AUTH)
    assert (status, body["state"]) == (200, "expired")
    assert not await object_exists(s3_client, s3_bucket, key)
    row = await job_row(pool, job_id)
    assert row["state"] == "expired"
    assert row["expires_at"] <= await pool.fetchval("SELECT now()")
    status, body, _ = await call("GET", f"{api}/v1/jobs/{job_id}/download", AUTH)
    assert (status, body["error"]) == (410, "gone")


@pytest.mark.parametrize("job_id", ["not-a-uuid", str(uuid.UUID(int=0)), "1' OR '1'='1"])
async def test_delete_of_an_unknown_or_malformed_id_is_404(api: str, job_id: str) -> None:
    status, body, _ = await call("DELETE", f"{api}/v1/jobs/{job_id}", AUTH)
    assert (status, body["error"]) == (404, "not_found")


# --- GET /v1/jobs/{id}/download -----------------------------------------------------------


async def test_download_redirects_to_a_fresh_url_that_serves_the_object(
    api: str, pool: asyncpg.Pool, s3_client: S3Client, s3_bucket: str
) -> None:
    job_id, _ = await completed_job(pool, s3_client, s3_bucket, body=b"id\n42\n")
    status, body, headers = await call("GET", f"{api}/v1/jobs/{job_id}/download", AUTH)
    assert status == 302
    assert headers["Location"] == body["download_url"]
    assert headers["Cache-Control"] == "no-store"
    async with aiohttp.ClientSession() as session, session.get(headers["Location"]) as got:
        assert got.status == 200
        assert await got.read() == b"id\n42\n"
        assert "orders" in got.headers["Content-Disposition"]
    # Each answer signs anew: nothing is cached or stored.
    _, again, _ = await call("GET", f"{api}/v1/jobs/{job_id}/download", AUTH)
    _, doc, _ = await call("GET", f"{api}/v1/jobs/{job_id}", AUTH)
    assert doc["download_url"].split("?")[0] == again["download_url"].split("?")[0]


async def test_download_of_a_job_past_its_retention_is_gone(
    api: str, pool: asyncpg.Pool, s3_client: S3Client, s3_bucket: str
) -> None:
    job_id, _ = await completed_job(pool, s3_client, s3_bucket, expires_in="-1 minute")
    status, body, _ = await call("GET", f"{api}/v1/jobs/{job_id}/download", AUTH)
    assert (status, body["error"]) == (410, "gone")
    _, doc, _ = await call("GET", f"{api}/v1/jobs/{job_id}", AUTH)
    assert "download_url" not in doc


@pytest.mark.parametrize("state", ["pending", "failed", "cancelled"])
async def test_download_of_an_unfinished_job_is_a_conflict(
    api: str, pool: asyncpg.Pool, state: str
) -> None:
    job_id = await insert_job(pool)
    await pool.execute("UPDATE exportd.jobs SET state = $2 WHERE id = $1", job_id, state)
    status, body, _ = await call("GET", f"{api}/v1/jobs/{job_id}/download", AUTH)
    assert (status, body["error"], body["state"]) == (409, "not_completed", state)


async def test_a_completed_jobs_document_has_a_url_no_longer_than_its_retention(
    api: str, pool: asyncpg.Pool, s3_client: S3Client, s3_bucket: str
) -> None:
    job_id, _ = await completed_job(pool, s3_client, s3_bucket, expires_in="10 minutes")
    status, doc, _ = await call("GET", f"{api}/v1/jobs/{job_id}", AUTH)
    assert status == 200
    expires_in = int(doc["download_url"].split("X-Amz-Expires=")[1].split("&")[0])
    # The URL would live an hour (download_url_ttl) but the object only ten minutes.
    assert 500 < expires_in <= 600


# --- GET /v1/kinds -----------------------------------------------------------------------


async def test_kinds_come_with_their_parameter_schemas(api: str) -> None:
    status, body, _ = await call("GET", f"{api}/v1/kinds", AUTH)
    assert status == 200
    kinds: dict[str, Any] = {k["name"]: k for k in body["kinds"]}
    assert set(kinds) == {"orders", "everything", "bundle"}
    assert kinds["bundle"]["formats"] == ["zip", "xlsx"], "several datasets: a zip or a workbook"
    orders = kinds["orders"]
    assert orders["description"] == "A customer's orders since a day"
    assert orders["params_schema"]["required"] == ["since"]
    assert orders["params_schema"]["properties"]["since"]["format"] == "date"
    assert "csv" in orders["formats"]


async def test_a_row_with_a_number_python_cannot_hold_is_read_like_any_other(
    api: str, pool: asyncpg.Pool
) -> None:
    # An application may store 1e5000 (5,001 digits in jsonb): Python refuses
    # it as an int, and that must not fail the job's reads, nor the owner's
    # list, nor make a document no JSON parser takes.
    good = await insert_job(pool, owner="u1", kind="orders")
    odd = await pool.fetchval(
        "INSERT INTO exportd.jobs (owner, kind, params)"
        " VALUES ('u1', 'orders', '{\"n\": 1e5000, \"f\": 1.5e400}') RETURNING id"
    )

    def strict(text: str) -> Any:
        def refuse(name: str) -> None:
            pytest.fail(f"{name} in a document")

        return json.loads(text, parse_constant=refuse)

    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(f"{api}/v1/jobs/{odd}") as response:
            assert response.status == 200
            doc = strict(await response.text())
        async with session.get(f"{api}/v1/jobs", params={"owner": "u1"}) as response:
            assert response.status == 200
            page = strict(await response.text())
    assert doc["params"]["n"] == "1" + "0" * 5000
    assert {j["id"] for j in page["jobs"]} == {str(good), str(odd)}
