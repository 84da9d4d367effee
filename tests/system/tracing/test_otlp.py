"""`exportd run` traced by the standard OTEL_* variables: spans reach an OTLP/HTTP
collector on loopback (decoded with OpenTelemetry's own protobuf classes), the job's
log lines carry its trace id, `exportd check` says so; without the variables no
OpenTelemetry module is ever imported; a shutdown lets the process end whatever the
collector does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.daemon_process import daemon_env, daemon_process, log_events
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port
from tests.support.helpers import clean_env, deployment_env, exportd, wait_for_state
from tests.support.spans import CALLER_SPAN, TRACE_ID, TRACEPARENT

KINDS = """
[kinds.orders]
query = "SELECT g AS n FROM generate_series(1, 3) AS g WHERE :owner <> ''"
"""


@contextlib.asynccontextmanager
async def collector() -> AsyncIterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """An OTLP/HTTP trace receiver on loopback: its endpoint and what it received."""
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        received.append(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", received
    finally:
        await runner.cleanup()


async def test_exportd_run_sends_a_jobs_spans_to_the_collector_in_the_callers_trace(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    env = daemon_env(tmp_path, KINDS, dsn, rclone_server, bucket, free_port())
    async with collector() as (endpoint, received):
        env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_SERVICE_NAME="exportd-eu",
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        # The daemon is stopped (SIGTERM, then a blocking wait for its exit) in a
        # thread: the collector runs on this event loop and must keep answering
        # while the daemon's shutdown flushes the spans still buffered.
        with contextlib.ExitStack() as stack:
            log_path = stack.enter_context(daemon_process(env, tmp_path))
            try:
                job_id = await pool.fetchval(
                    "INSERT INTO exportd.jobs (owner, kind, trace_context)"
                    " VALUES ('u', 'orders', $1::text::jsonb) RETURNING id",
                    json.dumps({"traceparent": TRACEPARENT}),
                )
                row = await wait_for_state(pool, job_id, {"completed", "failed"})
                assert row["state"] == "completed", row["error"]
            finally:
                await asyncio.to_thread(stack.close)
    spans = {}
    services = set()
    for request in received:
        for resource_spans in request.resource_spans:
            services |= {
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            }
            for scope in resource_spans.scope_spans:
                spans.update({s.name: s for s in scope.spans})
    assert services == {"exportd-eu"}
    attempt = spans["export orders"]
    assert attempt.trace_id.hex() == TRACE_ID
    assert attempt.parent_span_id.hex() == CALLER_SPAN
    assert {"claim wait", "stream", "complete"} <= set(spans)
    assert spans["stream"].parent_span_id == attempt.span_id

    events = log_events(log_path)
    [tracing] = [e for e in events if e["event"] == "tracing"]
    assert (tracing["on"], tracing["exporter"]) == (True, "otlp")
    [started] = [e for e in events if e["event"] == "job_started"]
    assert (started["trace_id"], started["span_id"]) == (TRACE_ID, attempt.span_id.hex())


async def test_check_says_whether_tracing_is_on(
    rclone_server: S3Endpoint, dsn: str, tmp_path: Path
) -> None:
    env = deployment_env(tmp_path, dsn, rclone_server, create_bucket(rclone_server), KINDS)
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    tracing: off (neither OTEL_TRACES_EXPORTER" in result.stdout

    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://collector.example:4318"
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    tracing: on: otlp (OTEL_EXPORTER_OTLP_ENDPOINT is set)" in result.stdout
    assert "collector.example" not in result.stdout

    env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "FAIL  tracing: OTLP protocol 'grpc' is not supported" in result.stdout


# Every module on a job's path and the API's, then tracing started, a span opened and
# a log line written as the daemon would with no OTEL_* variable set.
_UNTRACED = """
import sys
import structlog
import exportd.cli.main, exportd.daemon.serve, exportd.api.app, exportd.worker.loop
import exportd.s3.upload, exportd.export.engine
from exportd.logs import configure_logging
from exportd.tracing.seam import span
from exportd.tracing.setup import start_tracing
configure_logging("json", "info")
assert not start_tracing(show_owner=False, log=structlog.get_logger()).on
with span("x"):
    structlog.get_logger().info("untraced")
print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
"""


def test_without_the_variables_no_opentelemetry_module_is_imported() -> None:
    env = {k: v for k, v in clean_env().items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", _UNTRACED],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"
    assert '"event": "untraced"' in result.stderr
    assert "trace_id" not in result.stderr


_EXIT_AFTER_SHUTDOWN = """
import threading
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from exportd.tracing.otel import OtelTracer, provider_with

class Stuck(SpanExporter):
    def export(self, spans):
        threading.Event().wait()  # a collector that never answers

    def shutdown(self):
        # Called only once the batch processor gave up waiting on the export.
        print("exporter shut down in", threading.current_thread().name)

tracer = OtelTracer(provider_with(BatchSpanProcessor(Stuck(), schedule_delay_millis=10)))
with tracer.start("a"):
    pass
tracer.shutdown(0.2)
print("shut down")
"""


def test_the_process_exits_after_a_shutdown_whatever_the_collector_does() -> None:
    # The SDK's own exit hook would shut the provider down again, in the main
    # thread, waiting up to 30 s more on the stuck export before the interpreter
    # could end: past the 5 s the docs promise, and many an orchestrator's grace.
    result = subprocess.run(
        [sys.executable, "-c", _EXIT_AFTER_SHUTDOWN],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "shut down"


async def test_exportd_run_untraced_never_imports_opentelemetry(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    env = daemon_env(tmp_path, KINDS, dsn, rclone_server, bucket, free_port())
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    # -X importtime: every module the process imports, when it does, is logged.
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    with daemon_process(env, tmp_path) as log_path:
        job_id = await pool.fetchval(
            "INSERT INTO exportd.jobs (owner, kind, trace_context)"
            " VALUES ('u', 'orders', $1::text::jsonb) RETURNING id",
            json.dumps({"traceparent": TRACEPARENT}),
        )
        row = await wait_for_state(pool, job_id, {"completed", "failed"})
        assert row["state"] == "completed", row["error"]
    imported = [line for line in log_path.read_text().splitlines() if "import time:" in line]
    assert any("exportd.tracing.seam" in line for line in imported)
    assert not [line for line in imported if "opentelemetry" in line]
