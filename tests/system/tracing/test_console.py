"""docs/operations.md "Tracing", followed as written: OTEL_TRACES_EXPORTER=console
prints the documented spans, with the documented attributes, to the daemon's
stdout, and nothing of a caller's values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.daemon_process import daemon_env, daemon_process, log_events, status
from tests.support.fixtures_api import call
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port
from tests.support.helpers import eventually, wait_for_state
from tests.support.spans import CALLER_SPAN, TRACE_ID, TRACEPARENT

KINDS = """
[kinds.orders]
query = "SELECT g AS n, :note AS note FROM generate_series(1, 3) AS g WHERE :owner <> ''"
[kinds.orders.params.note]
type = "string"
required = true
"""
TOKEN = "console-test-token"
SECRET = "s3cr3t-param-value"
OWNER = "owner-never-traced"


def printed_spans(text: str) -> list[dict[str, Any]]:
    """The JSON objects ConsoleSpanExporter printed among the log lines."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{\n", at)) >= 0:
        doc, at = decoder.raw_decode(text, at)
        found.append(doc)
    return found


async def test_the_console_exporter_prints_the_documented_spans(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    port = free_port()
    env = daemon_env(
        tmp_path, KINDS, dsn, rclone_server, bucket, port, api_tokens=TOKEN, access_log="true"
    )
    env.update(OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="100")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with daemon_process(env, tmp_path) as log_path:
        await eventually(lambda: _up(port))
        answer, doc, _ = await call(
            "POST",
            f"http://127.0.0.1:{port}/v1/jobs?owner={OWNER}",
            {**auth, "traceparent": TRACEPARENT, "tracestate": "vendor=abc"},
            json={"owner": OWNER, "kind": "orders", "params": {"note": SECRET}},
        )
        assert answer == 202, doc
        row = await wait_for_state(pool, doc["id"], {"completed", "failed"})
        assert row["state"] == "completed", row["error"]
        answer, _, _ = await call("GET", f"http://127.0.0.1:{port}/v1/jobs/{doc['id']}", auth)
        assert answer == 200
    printed = log_path.read_text()
    spans = {s["name"]: s for s in printed_spans(printed)}
    assert {"POST /v1/jobs", "GET /v1/jobs/{id}"} <= set(spans)
    assert {"export orders", "claim wait", "stream", "complete"} <= set(spans)
    # Smaller than one part: stored whole by the commit, no multipart part.
    assert "upload part" not in spans
    post = spans["POST /v1/jobs"]
    assert post["kind"] == "SpanKind.SERVER"
    assert post["parent_id"] == f"0x{CALLER_SPAN}"
    assert post["attributes"] == {
        "http.request.method": "POST",
        "http.route": "/v1/jobs",
        "http.response.status_code": 202,
    }
    attempt = spans["export orders"]
    assert attempt["kind"] == "SpanKind.CONSUMER"
    assert attempt["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert attempt["parent_id"] == f"0x{CALLER_SPAN}"
    assert "key=vendor, value=abc" in attempt["context"]["trace_state"]
    assert attempt["attributes"] == {
        "exportd.job.id": doc["id"],
        "exportd.job.kind": "orders",
        "exportd.job.format": "csv",
        "exportd.job.attempt": 1,
        "exportd.job.max_attempts": row["max_attempts"],
        "exportd.job.outcome": "completed",
        "exportd.job.rows": 3,
        "exportd.job.bytes": row["size_bytes"],
    }
    for child in ("claim wait", "stream", "complete"):
        assert spans[child]["parent_id"] == attempt["context"]["span_id"]
    assert all(s["resource"]["attributes"]["service.name"] == "exportd" for s in spans.values())
    # Log lines written inside a span carry its ids (docs: "Logs").
    events = log_events(log_path)
    for event in ("job_started", "job_completed"):
        [line] = [e for e in events if e["event"] == event]
        ids = (line["trace_id"], line["span_id"])
        assert ids == (TRACE_ID, attempt["context"]["span_id"][2:])
    [logged] = [e for e in events if e["event"] == "http_request" and e["method"] == "POST"]
    assert logged["span_id"] == post["context"]["span_id"][2:]
    for span in printed_spans(printed):
        assert SECRET not in json.dumps(span)
        assert OWNER not in json.dumps(span)


async def _up(port: int) -> bool:
    return (await status(port, "/healthz"))[0] == 200
