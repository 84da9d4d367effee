"""The trace_context column (migration 0012): NULL by default, an object bounded in
bytes, a tracestate bounded to W3C's 512 characters; a malformed traceparent is
stored (the daemon ignores it), never refused."""

from __future__ import annotations

import json

import asyncpg
import pytest

from exportd import limits
from exportd.queue.sql import migrations
from tests.support.helpers import insert_job

INSERT = "INSERT INTO exportd.jobs (owner, kind, trace_context) VALUES ('u', 'k', $1::text::jsonb)"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_the_migration_holds_the_numbers_of_limits() -> None:
    [sql] = [m.sql for m in migrations() if m.name == "trace_context"]
    assert f"<= {limits.TRACE_CONTEXT_MAX_BYTES}" in sql
    assert f"<= {limits.TRACESTATE_MAX_CHARS}" in sql


async def test_a_job_inserted_without_a_trace_has_none(pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool)
    assert (
        await pool.fetchval("SELECT trace_context FROM exportd.jobs WHERE id = $1", job_id) is None
    )


@pytest.mark.parametrize(
    "document",
    [
        json.dumps({"traceparent": TRACEPARENT}),
        json.dumps({"traceparent": TRACEPARENT, "tracestate": "v=" + "a" * 510}),
        # Malformed: kept, and ignored when the job runs.
        json.dumps({"traceparent": "not a traceparent"}),
        json.dumps({"traceparent": 42, "tracestate": ["x"]}),
    ],
)
async def test_bounded_objects_are_stored(pool: asyncpg.Pool, document: str) -> None:
    await pool.execute(INSERT, document)


@pytest.mark.parametrize("document", ["[]", '"00-..."', "1", "true"])
async def test_a_trace_context_that_is_no_object_is_refused(
    pool: asyncpg.Pool, document: str
) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="jobs_trace_context_bounds"):
        await pool.execute(INSERT, document)


@pytest.mark.parametrize(
    "document",
    [
        json.dumps({"traceparent": TRACEPARENT, "junk": "x" * limits.TRACE_CONTEXT_MAX_BYTES}),
        json.dumps({"traceparent": TRACEPARENT, "tracestate": "v=" + "a" * 511}),
        # Characters, not bytes: 513 of them in fewer than 1024 bytes still count.
        json.dumps({"tracestate": "é" * 513}, ensure_ascii=False),
    ],
)
async def test_documents_over_the_bounds_are_refused(pool: asyncpg.Pool, document: str) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="jobs_trace_context_bounds"):
        await pool.execute(INSERT, document)
