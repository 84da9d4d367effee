"""The seam: free when off, and with OpenTelemetry, spans nest through tasks, log
lines carry their ids, and a shutdown ends by its deadline whatever the exporter does."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from structlog.testing import capture_logs

from exportd.queue.job import Job
from exportd.tracing.jobs import attempt_ended, attempt_span, job_attributes, ready_time
from exportd.tracing.logs import add_trace_ids
from exportd.tracing.otel import OtelTracer, provider_with
from exportd.tracing.seam import (
    NO_TRACER,
    current_ids,
    current_span,
    span,
    traced_part,
    tracer,
)
from exportd.tracing.setup import start_tracing, tracing_report
from tests.support.spans import CALLER_SPAN, TRACE_ID, TRACEPARENT, attrs, hex_ids, parent_id, spans

__all__ = ["spans"]

CONSOLE = {"OTEL_TRACES_EXPORTER": "console"}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def a_job(**fields: object) -> Job:
    values: dict[str, object] = {
        "id": uuid.UUID(int=7),
        "owner": "user_1",
        "kind": "orders",
        "params": {"secret": "never"},
        "format": "csv",
        "priority": 0,
        "attempt": 2,
        "max_attempts": 5,
        "created_at": NOW,
        "claim": 2,
        **fields,
    }
    return Job(**values)  # type: ignore[arg-type]


def test_off_every_span_is_one_shared_no_op() -> None:
    assert not NO_TRACER.enabled
    assert span("x") is span("y")
    with span("x") as opened:
        opened.set({"a": 1})
        opened.fail("internal", "x")
    assert current_ids.get() is None
    with attempt_span(a_job(), NOW) as attempt:
        assert attempt is current_span()


def test_the_attributes_hold_no_params_and_the_owner_only_when_allowed() -> None:
    hidden = job_attributes(a_job(), show_owner=False)
    assert hidden == {
        "exportd.job.id": str(uuid.UUID(int=7)),
        "exportd.job.kind": "orders",
        "exportd.job.format": "csv",
        "exportd.job.attempt": 2,
        "exportd.job.max_attempts": 5,
    }
    assert job_attributes(a_job(), show_owner=True)["exportd.job.owner"] == "user_1"


async def test_an_attempt_continues_the_rows_trace_and_its_parts_nest(
    spans: InMemorySpanExporter,
) -> None:
    ready = NOW - timedelta(seconds=3)
    job = a_job(
        trace_context={"traceparent": TRACEPARENT}, ready_at=ready, created_at=ready - timedelta(1)
    )
    with capture_logs(processors=[add_trace_ids]) as logs, attempt_span(job, NOW):
        with span("stream"):
            # A task made inside the span inherits it, as an S3 part upload does.
            await asyncio.create_task(traced_part(1, 5, asyncio.sleep(0)))
            structlog.get_logger().info("inside")
        attempt_ended("completed", rows=3, size_bytes=5)
    found = spans.get_finished_spans()
    by_name = {s.name: s for s in found}
    attempt = by_name["export orders"]
    assert (hex_ids(attempt)[0], parent_id(attempt)) == (TRACE_ID, CALLER_SPAN)
    assert parent_id(by_name["claim wait"]) == hex_ids(attempt)[1]
    assert by_name["claim wait"].start_time == attempt.start_time == int(ready.timestamp() * 1e9)
    assert by_name["claim wait"].end_time == int(NOW.timestamp() * 1e9)
    assert parent_id(by_name["upload part"]) == hex_ids(by_name["stream"])[1]
    assert by_name["upload part"].attributes == {"exportd.part.number": 1, "exportd.part.bytes": 5}
    assert attrs(attempt)["exportd.job.rows"] == 3
    [line] = logs
    assert (line["trace_id"], line["span_id"]) == hex_ids(by_name["stream"])
    assert current_ids.get() is None


def test_a_malformed_trace_context_starts_a_trace_of_its_own(
    spans: InMemorySpanExporter,
) -> None:
    # A claim read on a clock behind the database's: the wait never ends before it began.
    job = a_job(trace_context={"traceparent": "junk"}, ready_at=NOW + timedelta(seconds=1))
    with attempt_span(job, NOW):
        pass
    attempt = next(s for s in spans.get_finished_spans() if s.name == "export orders")
    assert attempt.parent is None
    assert attempt.start_time == int(NOW.timestamp() * 1e9)


def test_the_claim_wait_starts_at_run_after_within_creation_and_claim() -> None:
    created = NOW - timedelta(hours=1)
    due = NOW - timedelta(minutes=5)
    assert ready_time(a_job(created_at=created, ready_at=due), NOW) == due
    # run_after written in the past: the wait began when the job was created.
    past = datetime(2001, 1, 1, tzinfo=UTC)
    assert ready_time(a_job(created_at=created, ready_at=past), NOW) == created
    # -infinity and infinity, as asyncpg reads them (naive): the claim itself.
    assert ready_time(a_job(ready_at=datetime.min), NOW) == NOW
    assert ready_time(a_job(ready_at=datetime.max), NOW) == NOW
    assert ready_time(a_job(), NOW) == NOW


class _StuckExporter(SpanExporter):
    """A collector that never answers until released."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait()
        return SpanExportResult.SUCCESS


def test_shutdown_returns_by_its_deadline_when_the_collector_hangs() -> None:
    stuck = _StuckExporter()
    tracer = OtelTracer(provider_with(BatchSpanProcessor(stuck, schedule_delay_millis=10)))
    try:
        with tracer.start("a"):
            pass
        # Returns (else the test's timeout fails it): the flush waits in an abandoned thread.
        tracer.shutdown(0.2)
    finally:
        stuck.release.set()


def test_check_says_whether_tracing_is_on_and_never_the_endpoint() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:token@collector:4318"}
    ok, said = tracing_report(show_owner=False, env=env)
    assert ok
    assert said.startswith("on: otlp")
    assert "token" not in said
    assert "owners left out" in said
    assert tracing_report(show_owner=False, env={}) == (
        True,
        "off (neither OTEL_TRACES_EXPORTER nor OTEL_EXPORTER_OTLP_ENDPOINT is set)",
    )
    ok, said = tracing_report(show_owner=False, env={"OTEL_TRACES_EXPORTER": "jaeger"})
    assert not ok


def test_settings_the_sdk_refuses_leave_the_daemon_running_untraced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SDK reads OTEL_BSP_* itself, and raises on some values it cannot honour.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "-5")
    with capture_logs() as logs:
        done = start_tracing(show_owner=False, log=structlog.get_logger(), env=CONSOLE)
    assert not done.on
    assert done.problem is not None
    assert "schedule_delay" in done.problem
    assert [line["event"] for line in logs] == ["tracing_not_started"]
    assert tracer() is NO_TRACER


def test_an_sdk_without_the_otlp_exporter_leaves_the_daemon_running_untraced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # opentelemetry-sdk installed by something else, the exporter of the extra not.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    with capture_logs() as logs:
        done = start_tracing(show_owner=False, log=structlog.get_logger(), env=env)
    assert not done.on
    assert done.problem is not None
    assert "exportd[otel]" in done.problem
    assert [line["event"] for line in logs] == ["tracing_not_started"]
    assert tracer() is NO_TRACER


def test_check_reports_what_the_sdk_would_refuse_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "999999")
    ok, said = tracing_report(show_owner=False, env=CONSOLE)
    assert not ok
    assert "max_export_batch_size" in said
    assert tracer() is NO_TRACER
