"""A daemon traced into memory: the spans of a completed, a retried and a failed job,
the caller's trace continued from a POST's headers and from a row's trace_context,
trace ids on the job's log lines, and no caller values in any attribute."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from structlog.testing import capture_logs

from exportd.tracing.logs import add_trace_ids
from tests.support.daemon_harness import FAST, TOKEN, running_daemon
from tests.support.fixtures_api import call
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, s3_settings
from tests.support.helpers import eventually, job_row, wait_for_state
from tests.support.s3_proxy import failing_proxy
from tests.support.spans import (
    CALLER_SPAN,
    TRACE_ID,
    TRACEPARENT,
    attribute_values,
    attrs,
    children,
    descendants,
    hex_ids,
    named,
    parent_id,
)

# A value that must never reach a span: a param, and an owner (EXPORTD_TRACE_OWNER off).
SECRET = "s3cr3t-value-of-a-param"
OWNER = "owner-never-traced"

DEFINITIONS = """
[kinds.orders]
query = "SELECT g AS n, :owner AS owner, :note AS note FROM generate_series(1, 3) AS g"
[kinds.orders.params.note]
type = "string"
required = true

[kinds.big]
query = '''
SELECT g AS n, repeat(md5(g::text), 40) AS pad, :owner AS owner
FROM generate_series(1, 9000) AS g
'''

[kinds.broken]
query = "SELECT no_such_column FROM generate_series(1, 3) AS g WHERE :owner <> ''"
"""


def headers(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", **extra}


async def post_job(port: int, body: dict[str, Any], **extra: str) -> tuple[int, Any]:
    status, doc, _ = await call(
        "POST", f"http://127.0.0.1:{port}/v1/jobs", headers(**extra), json=body
    )
    return status, doc


def settings_for(endpoint: S3Endpoint, dsn: str, **kw: Any) -> Any:
    return s3_settings(endpoint, create_bucket(endpoint), database_url=dsn, **{**FAST, **kw})


def attempts_of(found: Any, job_id: uuid.UUID) -> list[Any]:
    spans = [s for s in found if attrs(s).get("exportd.job.id") == str(job_id)]
    return sorted(spans, key=lambda s: s.start_time or 0)


async def test_a_completed_job_continues_the_posting_callers_trace(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, spans: InMemorySpanExporter
) -> None:
    settings = settings_for(rclone_server, dsn)
    async with running_daemon(settings, DEFINITIONS) as daemon:
        with capture_logs(processors=[add_trace_ids]) as logs:
            status, doc = await post_job(
                daemon.api_port,
                {"owner": OWNER, "kind": "big"},
                traceparent=TRACEPARENT,
                tracestate="vendor=abc",
            )
            assert status == 202, doc
            assert doc["trace_context"] == {"traceparent": TRACEPARENT, "tracestate": "vendor=abc"}
            job_id = uuid.UUID(doc["id"])
            row = await wait_for_state(pool, job_id, {"completed", "failed"})
            assert row["state"] == "completed", row["error"]
            status, shown, _ = await call(
                "GET", f"http://127.0.0.1:{daemon.api_port}/v1/jobs/{job_id}", headers()
            )
            assert status == 200
            assert shown["trace_context"]["traceparent"] == TRACEPARENT
    found = spans.get_finished_spans()

    [attempt] = attempts_of(found, job_id)
    assert attempt.name == "export big"
    assert attempt.kind is SpanKind.CONSUMER
    assert hex_ids(attempt)[0] == TRACE_ID
    assert parent_id(attempt) == CALLER_SPAN
    assert attempt.parent is not None
    assert attempt.parent.is_remote
    assert attempt.status.status_code is StatusCode.UNSET
    assert attempt.attributes == {
        "exportd.job.id": str(job_id),
        "exportd.job.kind": "big",
        "exportd.job.format": "csv",
        "exportd.job.attempt": 1,
        "exportd.job.max_attempts": 5,
        "exportd.job.outcome": "completed",
        "exportd.job.rows": 9000,
        "exportd.job.bytes": row["size_bytes"],
    }
    assert [s.name for s in children(found, attempt)] == ["claim wait", "stream", "complete"]
    [stream] = named(tuple(children(found, attempt)), "stream")
    parts = [s for s in descendants(found, stream) if s.name == "upload part"]
    # About 11.6 MB in 5 MiB parts: three, each with its number and size.
    assert sorted(attrs(p)["exportd.part.number"] for p in parts) == [1, 2, 3]
    assert sum(attrs(p)["exportd.part.bytes"] for p in parts) == row["size_bytes"]

    # The API's own span: the route's template, the caller's span its parent.
    [post] = named(found, "POST /v1/jobs")
    assert (hex_ids(post)[0], parent_id(post)) == (TRACE_ID, CALLER_SPAN)
    assert post.kind is SpanKind.SERVER
    assert attrs(post)["http.route"] == "/v1/jobs"
    assert attrs(post)["http.response.status_code"] == 202
    [get] = named(found, "GET /v1/jobs/{id}")
    assert parent_id(get) is None  # no traceparent sent: a trace of its own
    assert not any(str(job_id) in s.name for s in found)

    # Log lines of the job carry the attempt's ids; those of the request, its span's.
    [started] = [e for e in logs if e["event"] == "job_started"]
    assert (started["trace_id"], started["span_id"]) == hex_ids(attempt)
    assert OWNER not in attribute_values(found)


async def test_a_retried_job_has_one_span_per_attempt_under_the_rows_trace(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, spans: InMemorySpanExporter
) -> None:
    async with failing_proxy(rclone_server.url) as proxy:
        # The bucket is made on the server itself: the proxy runs on this test's loop.
        bucket = create_bucket(rclone_server)
        proxied = S3Endpoint(
            "proxied", proxy.url, rclone_server.access_key, rclone_server.secret_key
        )
        settings = s3_settings(proxied, bucket, database_url=dsn, **FAST)
        async with running_daemon(settings, DEFINITIONS):
            proxy.failing = True  # S3 answers 503: the first attempt is retried
            context = json.dumps({"traceparent": TRACEPARENT})
            job_id = await pool.fetchval(
                "INSERT INTO exportd.jobs (owner, kind, params, trace_context)"
                " VALUES ($1, 'orders', $2::text::jsonb, $3::text::jsonb) RETURNING id",
                OWNER,
                json.dumps({"note": SECRET}),
                context,
            )

            async def retried() -> Any:
                row = await job_row(pool, job_id)
                return row if row["error_kind"] else None

            first = await eventually(retried, timeout=30)
            assert (first["state"], first["error_kind"]) == ("pending", "storage_unavailable")
            proxy.failing = False
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
            assert row["state"] == "completed", row["error"]
            assert row["trace_context"] == {"traceparent": TRACEPARENT}
    found = spans.get_finished_spans()

    one, two = attempts_of(found, job_id)
    assert [attrs(s)["exportd.job.attempt"] for s in (one, two)] == [1, 2]
    for attempt in (one, two):
        assert (hex_ids(attempt)[0], parent_id(attempt)) == (TRACE_ID, CALLER_SPAN)
        assert attempt.name == "export orders"
    assert one.status.status_code is StatusCode.ERROR
    assert attrs(one)["exportd.error_kind"] == "storage_unavailable"
    assert attrs(one)["exportd.job.outcome"] == "retry"
    assert two.status.status_code is StatusCode.UNSET
    assert attrs(two)["exportd.job.outcome"] == "completed"
    assert attrs(two)["exportd.job.rows"] == 3
    assert [s.name for s in children(found, two)] == ["claim wait", "stream", "complete"]
    # The params' values and the owner are nowhere in what a collector gets.
    values = attribute_values(found)
    assert not any(SECRET in str(v) or OWNER in str(v) for v in values)
    assert all(SECRET not in (s.status.description or "") for s in found)


async def test_a_failed_job_span_says_its_error_kind(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, spans: InMemorySpanExporter
) -> None:
    settings = settings_for(rclone_server, dsn)
    async with running_daemon(settings, DEFINITIONS) as daemon:
        job_id = await pool.fetchval(
            "INSERT INTO exportd.jobs (owner, kind, trace_context)"
            " VALUES ($1, 'broken', $2::text::jsonb) RETURNING id",
            OWNER,
            json.dumps({"traceparent": TRACEPARENT}),
        )
        row = await wait_for_state(pool, job_id, {"completed", "failed"})
        assert (row["state"], row["error_kind"]) == ("failed", "query_error")
        # Run again on request: the job keeps its trace, and its new attempt is
        # another child of the caller's span.
        status, doc, _ = await call(
            "POST", f"http://127.0.0.1:{daemon.api_port}/v1/jobs/{job_id}/retry", headers()
        )
        assert status == 202, doc
        assert doc["trace_context"] == {"traceparent": TRACEPARENT}

        async def failed_again() -> bool:
            return len(attempts_of(spans.get_finished_spans(), job_id)) == 2

        await eventually(failed_again)
    found = spans.get_finished_spans()
    attempt, again = attempts_of(found, job_id)
    assert parent_id(again) == CALLER_SPAN
    assert hex_ids(again)[0] == TRACE_ID
    assert (hex_ids(attempt)[0], parent_id(attempt)) == (TRACE_ID, CALLER_SPAN)
    assert attempt.status.status_code is StatusCode.ERROR
    assert attempt.status.description == "query_error"
    assert attrs(attempt)["exportd.error_kind"] == "query_error"
    assert attrs(attempt)["exportd.job.outcome"] == "failed"
    assert "exportd.job.owner" not in attrs(attempt)
    [stream] = named(tuple(children(found, attempt)), "stream")
    assert stream.status.status_code is StatusCode.ERROR
    assert stream.status.description == "ExportError"


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ({"traceparent": "garbage"}, None),
        ({"traceparent": "00-" + "f" * 6000}, None),
        ({"traceparent": f"00-{'0' * 32}-{CALLER_SPAN}-01"}, None),
        ({"traceparent": TRACEPARENT.upper()}, None),
        ({"tracestate": "vendor=abc"}, None),
        (
            {
                "traceparent": TRACEPARENT,
                "tracestate": ",".join(f"v{i}=" + "x" * 60 for i in range(30)),
            },
            "cut",
        ),
        ({"traceparent": TRACEPARENT, "tracestate": "bad=st\u00e4te"}, TRACEPARENT),
    ],
    ids=["garbage", "huge", "zero-trace", "upper-case", "state-alone", "long-state", "bad-state"],
)
async def test_malformed_or_huge_trace_headers_never_fail_the_request(
    rclone_server: S3Endpoint,
    dsn: str,
    pool: asyncpg.Pool,
    spans: InMemorySpanExporter,
    sent: dict[str, str],
    kept: str | None,
) -> None:
    settings = settings_for(rclone_server, dsn)
    async with running_daemon(settings, DEFINITIONS) as daemon:
        status, doc = await post_job(
            daemon.api_port, {"owner": OWNER, "kind": "orders", "params": {"note": "x"}}, **sent
        )
    assert status == 202, doc
    stored = await pool.fetchval(
        "SELECT trace_context FROM exportd.jobs WHERE id = $1", uuid.UUID(doc["id"])
    )
    assert doc["trace_context"] == stored
    if kept is None:
        assert stored is None
        [post] = named(spans.get_finished_spans(), "POST /v1/jobs")
        assert parent_id(post) is None
    elif kept == "cut":
        state = stored["tracestate"]
        assert len(state) <= 512
        assert state == ",".join(f"v{i}=" + "x" * 60 for i in range(len(state.split(","))))
    else:
        assert stored == {"traceparent": kept}


async def test_request_spans_name_routes_never_paths_queries_or_odd_methods(
    rclone_server: S3Endpoint, dsn: str, spans: InMemorySpanExporter
) -> None:
    settings = settings_for(rclone_server, dsn)
    async with running_daemon(settings, DEFINITIONS) as daemon:
        base = f"http://127.0.0.1:{daemon.api_port}"
        status, _, _ = await call("GET", f"{base}/v1/jobs?owner={OWNER}&state=pending", headers())
        assert status == 200
        # An unknown path: the span is named by the method alone.
        status, _, _ = await call("GET", f"{base}/v1/{SECRET}", headers())
        assert status == 404
        # A method HTTP's parser knows (WebDAV's) and exportd does not: _OTHER.
        async with (
            aiohttp.ClientSession() as session,
            session.request("PROPFIND", f"{base}/v1/jobs", headers=headers()) as answer,
        ):
            assert answer.status == 405
    found = spans.get_finished_spans()
    assert sorted(s.name for s in found) == ["GET", "GET /v1/jobs", "_OTHER"]
    [odd] = named(found, "_OTHER")
    assert attrs(odd)["http.request.method"] == "_OTHER"
    [unknown] = named(found, "GET")
    assert "http.route" not in attrs(unknown)
    values = attribute_values(found)
    assert not any(OWNER in str(v) or SECRET in str(v) for v in values)


# What a direct INSERT may store that the column's CHECK lets through: objects of
# at most 1024 bytes whose tracestate, when a string, is at most 512 characters.
ODD_TRACE_CONTEXTS: list[Any] = [
    {"traceparent": 7},
    {"traceparent": ["00", TRACE_ID]},
    {"traceparent": {"a": {"b": [1, [2, [3, None]]]}}},
    {"traceparent": None, "tracestate": "a=b"},
    {"traceparent": TRACEPARENT.upper()},
    {"traceparent": TRACEPARENT, "tracestate": 7},
    {"traceparent": TRACEPARENT, "tracestate": {"vendor": "x"}},
    {"traceparent": TRACEPARENT, "tracestate": "a=ü," + "b=" + "x" * 300},
    {"a": json.loads("[" * 300 + "]" * 300)},
]


async def test_rows_with_odd_trace_contexts_run_and_show_in_one_claim(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, spans: InMemorySpanExporter
) -> None:
    ids = [
        await pool.fetchval(
            "INSERT INTO exportd.jobs (owner, kind, params, trace_context)"
            " VALUES ($1, 'orders', $2::text::jsonb, $3::text::jsonb) RETURNING id",
            OWNER,
            json.dumps({"note": SECRET}),
            json.dumps(odd),
        )
        for odd in ODD_TRACE_CONTEXTS
    ]
    # Queued before the daemon starts, with a slot for each: one claim takes them all.
    settings = settings_for(rclone_server, dsn, concurrency=len(ids))
    async with running_daemon(settings, DEFINITIONS) as daemon:
        for job_id in ids:
            row = await wait_for_state(pool, job_id, {"completed", "failed"})
            assert row["state"] == "completed", (row["error_kind"], row["error"])
            status, doc, _ = await call(
                "GET", f"http://127.0.0.1:{daemon.api_port}/v1/jobs/{job_id}", headers()
            )
            assert status == 200, doc
            expected = {"traceparent": TRACEPARENT} if job_id in ids[5:8] else None
            assert doc["trace_context"] == expected
    found = spans.get_finished_spans()
    for job_id in ids:
        [attempt] = attempts_of(found, job_id)
        if job_id in ids[5:8]:
            assert (hex_ids(attempt)[0], parent_id(attempt)) == (TRACE_ID, CALLER_SPAN)
        else:
            assert attempt.parent is None
