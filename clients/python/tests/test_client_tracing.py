"""The caller's W3C trace context, on every request and every job row, from the
current OpenTelemetry span; nothing at all outside a span."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg
import pytest
from client_support import Exportd
from exportd_client import Client, enqueue_asyncpg, enqueue_psycopg, enqueue_sqlalchemy
from exportd_client._tracing import TRACESTATE_MAX_BYTES, trace_headers
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from sqlalchemy import create_engine

from tests.support.daemon_harness import TOKEN

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@contextlib.contextmanager
def in_span(state: list[tuple[str, str]] | None = None) -> Iterator[None]:
    """The application's current span (the API alone makes one: no SDK needed)."""
    context = SpanContext(
        TRACE_ID,
        SPAN_ID,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState(state or []),
    )
    with trace.use_span(NonRecordingSpan(context)):
        yield


async def _stored(dsn: str, job_id: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        raw = await conn.fetchval(
            "SELECT trace_context::text FROM exportd.jobs WHERE id = $1", job_id
        )
    finally:
        await conn.close()
    return None if raw is None else json.loads(raw)


async def test_outside_a_span_the_column_is_never_named(dsn: str) -> None:
    assert trace_headers() == {}
    conn = await asyncpg.connect(dsn)
    try:
        # A queue older than migration 0012: an application without tracing
        # enqueues exactly as before.
        await conn.execute("ALTER TABLE exportd.jobs DROP COLUMN trace_context")
        job = await enqueue_asyncpg(conn, "acme", "ledger")
        assert job.trace_context is None
        with in_span(), pytest.raises(asyncpg.UndefinedColumnError):
            await enqueue_asyncpg(conn, "acme", "ledger")
    finally:
        await conn.close()


@pytest.mark.parametrize("helper", ["asyncpg", "psycopg", "sqlalchemy"])
async def test_a_job_enqueued_with_sql_in_a_span_carries_its_trace(helper: str, dsn: str) -> None:
    with in_span([("vendor", "v1"), ("other", "x")]):
        if helper == "asyncpg":
            conn = await asyncpg.connect(dsn)
            try:
                job = await enqueue_asyncpg(conn, "acme", "ledger")
            finally:
                await conn.close()
        elif helper == "psycopg":
            with psycopg.connect(dsn) as sync_conn:
                job = enqueue_psycopg(sync_conn, "acme", "ledger")
        else:
            engine = create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.begin() as db:
                job = enqueue_sqlalchemy(db, "acme", "ledger")
            engine.dispose()
    expected = {"traceparent": TRACEPARENT, "tracestate": "vendor=v1,other=x"}
    assert job.trace_context == expected
    assert await _stored(dsn, job.id) == expected


async def test_a_tracestate_over_its_bound_is_left_out(dsn: str) -> None:
    members = [(f"k{i}", "v" * 60) for i in range(10)]
    with in_span(members):
        assert len(trace.get_current_span().get_span_context().trace_state.to_header()) > (
            TRACESTATE_MAX_BYTES
        )
        assert trace_headers() == {"traceparent": TRACEPARENT}
        conn = await asyncpg.connect(dsn)
        try:
            job = await enqueue_asyncpg(conn, "acme", "ledger")
        finally:
            await conn.close()
    assert await _stored(dsn, job.id) == {"traceparent": TRACEPARENT}


def test_a_job_enqueued_over_http_in_a_span_carries_its_trace(exportd: Exportd, owner: str) -> None:
    with Client(exportd.url, TOKEN) as client:
        with in_span([("vendor", "v1")]):
            job = client.enqueue("ledger", owner=owner)
        untraced = client.enqueue("ledger", owner=owner)
        expected = {"traceparent": TRACEPARENT, "tracestate": "vendor=v1"}
        assert job.trace_context == expected
        assert client.get(job.id).trace_context == expected
        assert untraced.trace_context is None
        client.wait(job.id, timeout=60)
        client.wait(untraced.id, timeout=60)
