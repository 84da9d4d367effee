"""The overview's pure decisions: which pending jobs are ready, the oldest of them,
and each daemon's running jobs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from exportd.queue.overview import PendingKind, oldest_ready, pending_kinds
from exportd.queue.pauses import ALL_KINDS, Pause
from exportd.queue.workers import JobProgress, with_running

AS_OF = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _pause(kind: str) -> Pause:
    return Pause(kind, AS_OF, "test", None)


def _live(state: str, kind: str, oldest_ago: float | None) -> dict[str, Any]:
    oldest = None if oldest_ago is None else AS_OF - timedelta(seconds=oldest_ago)
    return {"state": state, "kind": kind, "n": 3, "ready": 2, "oldest_ready_at": oldest}


def test_the_oldest_ready_job_is_of_a_kind_not_paused() -> None:
    rows = [
        _live("pending", "orders", 60),
        _live("pending", "invoices", 3600),  # older, but paused
        _live("pending", "later", None),  # nothing due
        _live("processing", "orders", None),
    ]

    kinds = pending_kinds(rows, [_pause("invoices")])

    assert [(k.kind, k.paused) for k in kinds] == [
        ("orders", False),
        ("invoices", True),
        ("later", False),
    ]
    assert oldest_ready(kinds, AS_OF) == 60.0


def test_no_ready_job_when_every_kind_is_paused_or_nothing_is_due() -> None:
    rows = [_live("pending", "orders", 60), _live("pending", "later", None)]
    assert oldest_ready(pending_kinds(rows, [_pause(ALL_KINDS)]), AS_OF) is None
    assert oldest_ready(pending_kinds(rows[1:], []), AS_OF) is None


def test_a_run_after_a_moment_ahead_of_the_clock_waits_zero_seconds() -> None:
    ahead = PendingKind("orders", 1, 1, AS_OF + timedelta(seconds=1), paused=False)
    assert oldest_ready([ahead], AS_OF) == 0.0


def _job(worker_id: str) -> JobProgress:
    return JobProgress(uuid.uuid4(), "u1", "orders", worker_id, 0, 0, 0, 1, 5, AS_OF, AS_OF)


def test_each_worker_gets_its_own_running_jobs_and_no_other() -> None:
    worker: dict[str, Any] = {
        "version": "1",
        "host": "h",
        "pid": 1,
        "started_at": AS_OF,
        "concurrency": 2,
        "heartbeat_seconds": 10.0,
        "last_heartbeat_at": AS_OF,
        "heartbeat_age": 1.5,
    }
    a, b, orphan = _job("a"), _job("b"), _job("gone")

    found = with_running([worker | {"id": "a"}, worker | {"id": "b"}], [a, orphan, b])

    assert [(w.worker_id, w.running) for w in found] == [("a", (a,)), ("b", (b,))]
    assert found[0].heartbeat_age_seconds == 1.5
