"""POST /v1/jobs/{id}/retry and the runs of GET /v1/jobs/{id}, against real Postgres
and a real S3 server."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from structlog.testing import capture_logs

from exportd.errors import ErrorKind
from exportd.queue.postgres import PgJobStore
from tests.support.fixtures_api import AUTH, call
from tests.support.helpers import insert_job, job_row

LEASE = 30.0
SCOPED_U1 = {**AUTH, "X-Exportd-Owner": "u1"}


async def ended_job(pool: asyncpg.Pool, how: str, *, owner: str = "u1") -> uuid.UUID:
    """A job that ran once, on worker w1, and ended ``failed`` or ``cancelled``."""
    store = PgJobStore(pool)
    job_id = await insert_job(pool, owner=owner, kind="orders", max_attempts=2)
    [job] = await store.claim("w1", 1, LEASE)
    assert job.id == job_id
    if how == "failed":
        assert await store.fail(
            job, "w1", "relation src.orders does not exist", ErrorKind.QUERY_ERROR
        )
    else:
        assert await pool.fetchval("SELECT exportd.cancel($1)", job_id)
    return job_id


@pytest.mark.parametrize("how", ["failed", "cancelled"])
async def test_a_failed_or_cancelled_job_is_pending_again_with_its_runs(
    api: str, pool: asyncpg.Pool, how: str
) -> None:
    job_id = await ended_job(pool, how)

    with capture_logs() as logs:
        status, body, headers = await call("POST", f"{api}/v1/jobs/{job_id}/retry", SCOPED_U1)

    assert status == 202, body
    assert headers["Location"] == f"/v1/jobs/{job_id}"
    assert (body["state"], body["attempts"], body["max_attempts"]) == ("pending", 0, 2)
    assert "claims" not in body
    [run] = body["runs"]
    assert (run["attempt"], run["worker_id"], run["outcome"], run["next_state"]) == (
        1,
        "w1",
        how,
        how,
    )
    assert run["error_kind"] == ("query_error" if how == "failed" else "cancelled")
    assert run["started_at"] <= run["finished_at"]
    row = await job_row(pool, job_id)
    assert (row["state"], row["attempts"], row["max_attempts"]) == ("pending", 0, 2)
    [retried] = [e for e in logs if e["event"] == "job_retried"]
    assert retried["job_id"] == str(job_id)
    assert (retried["by"], retried["owner_scope"], retried["remote"]) == ("api", "u1", "127.0.0.1")

    # GET shows the same runs, and every later one.
    status, doc, _ = await call("GET", f"{api}/v1/jobs/{job_id}", AUTH)
    assert status == 200
    assert doc["runs"] == body["runs"]


async def test_a_job_that_never_ran_has_no_runs(api: str, pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool, owner="u1")
    status, doc, _ = await call("GET", f"{api}/v1/jobs/{job_id}", AUTH)
    assert (status, doc["runs"]) == (200, [])


@pytest.mark.parametrize("state", ["pending", "processing", "completed", "expired"])
async def test_any_other_state_is_answered_409_and_left_alone(
    api: str, pool: asyncpg.Pool, state: str
) -> None:
    job_id = await insert_job(pool, owner="u1")
    await pool.execute(
        "UPDATE exportd.jobs SET state = $2, worker_id = 'w', lease_expires_at = now()"
        " + interval '1 hour' WHERE id = $1",
        job_id,
        state,
    )

    status, body, _ = await call("POST", f"{api}/v1/jobs/{job_id}/retry", AUTH)

    assert status == 409
    assert (body["error"], body["state"], body["job"]["id"]) == (
        "not_retryable",
        state,
        str(job_id),
    )
    assert f"is {state}: only a failed or cancelled job can be retried" in body["message"]
    assert (await job_row(pool, job_id))["state"] == state


async def test_unknown_malformed_and_other_owners_jobs_are_404(
    api: str, pool: asyncpg.Pool
) -> None:
    theirs = await ended_job(pool, "failed", owner="u2")
    for job_id, headers in [
        (uuid.uuid4(), AUTH),
        ("not-a-uuid", AUTH),
        (theirs, SCOPED_U1),
    ]:
        status, body, _ = await call("POST", f"{api}/v1/jobs/{job_id}/retry", headers)
        assert (status, body["error"]) == (404, "not_found"), body
    assert (await job_row(pool, theirs))["state"] == "failed"
    status, _, _ = await call("POST", f"{api}/v1/jobs/{theirs}/retry", {})
    assert status == 401


async def test_a_live_duplicate_is_answered_409_naming_it(api: str, pool: asyncpg.Pool) -> None:
    old = await pool.fetchval(
        "INSERT INTO exportd.jobs (owner, kind, state, dedupe_key, finished_at)"
        " VALUES ('u1', 'orders', 'cancelled', 'button', now()) RETURNING id"
    )
    live = await pool.fetchval("SELECT exportd.enqueue('u1', 'orders', dedupe_key => 'button')")

    status, body, _ = await call("POST", f"{api}/v1/jobs/{old}/retry", AUTH)

    assert status == 409
    assert (body["error"], body["duplicate_id"], body["state"]) == (
        "duplicate",
        str(live),
        "cancelled",
    )
    assert "jobs_dedupe_idx" in body["message"]


async def test_concurrent_retries_make_one_pending_job(api: str, pool: asyncpg.Pool) -> None:
    job_id = await ended_job(pool, "failed")

    answers = await asyncio.gather(
        *(call("POST", f"{api}/v1/jobs/{job_id}/retry", AUTH) for _ in range(6))
    )

    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [202, 409, 409, 409, 409, 409]
    assert {b["state"] for s, b, _ in answers if s == 409} == {"pending"}
    row = await job_row(pool, job_id)
    assert (row["state"], row["attempts"]) == ("pending", 0)


async def test_cancel_stops_a_pending_job_and_logs_who(api: str, pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool, owner="u1", kind="orders")

    with capture_logs() as logs:
        status, body, _ = await call("POST", f"{api}/v1/jobs/{job_id}/cancel", SCOPED_U1)

    assert status == 200, body
    assert body["state"] == "cancelled"
    assert (await job_row(pool, job_id))["state"] == "cancelled"
    [line] = [entry for entry in logs if entry["event"] == "job_cancelled"]
    assert (line["job_id"], line["was"], line["owner_scope"]) == (str(job_id), "pending", "u1")


@pytest.mark.parametrize("how", ["failed", "cancelled"])
async def test_cancel_of_an_ended_job_changes_nothing(
    api: str, pool: asyncpg.Pool, how: str
) -> None:
    job_id = await ended_job(pool, how)
    before = await job_row(pool, job_id)

    status, body, _ = await call("POST", f"{api}/v1/jobs/{job_id}/cancel", SCOPED_U1)

    assert status == 409, body
    assert (body["error"], body["state"], body["job"]["state"]) == ("not_cancellable", how, how)
    assert await job_row(pool, job_id) == before


async def test_cancel_never_deletes_a_completed_export(api: str, pool: asyncpg.Pool) -> None:
    """DELETE of a completed job removes its object; a cancel that arrives just after
    the job completed must leave it downloadable."""
    job_id = await insert_job(pool, owner="u1", kind="orders")
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'completed', finished_at = now(),"
        " object_key = 'exports/x.csv', expires_at = now() + interval '1 day' WHERE id = $1",
        job_id,
    )

    status, body, _ = await call("POST", f"{api}/v1/jobs/{job_id}/cancel", SCOPED_U1)

    assert status == 409, body
    assert body["state"] == "completed"
    row = await job_row(pool, job_id)
    assert (row["state"], row["object_key"]) == ("completed", "exports/x.csv")


async def test_cancel_answers_404_for_another_owner_and_an_unknown_id(
    api: str, pool: asyncpg.Pool
) -> None:
    job_id = await insert_job(pool, owner="u2", kind="orders")

    other, _, _ = await call("POST", f"{api}/v1/jobs/{job_id}/cancel", SCOPED_U1)
    unknown, _, _ = await call("POST", f"{api}/v1/jobs/{uuid.uuid4()}/cancel", SCOPED_U1)

    assert (other, unknown) == (404, 404)
    assert (await job_row(pool, job_id))["state"] == "pending"
