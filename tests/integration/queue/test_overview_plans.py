"""The overview's statements and the dashboard's list on a million job rows: each
reads the index meant for it, and none reads the whole jobs table.

Plans, not timings (bench/overview.py times them): the overview's statements
must be index-only scans of migration 0013's partial indexes that skip the
heap, so that their cost follows the live jobs and the window, never the
history; the list and the live progress must never scan the table.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from exportd.queue.overview import MINUTES
from exportd.queue.sql import queries
from tests.support.big_history import load_history
from tests.support.helpers import plan_nodes

ROWS = 1_000_000
NOW = datetime.now(UTC)

# (statement, its arguments, the index it must read only, or None: any index).
OVERVIEW: list[tuple[str, tuple[Any, ...], str]] = [
    ("overview_live", (), "jobs_live_kind_idx"),
    ("overview_finished", (86400.0,), "jobs_finished_kind_idx"),
    ("overview_minutes", (MINUTES,), "jobs_finished_kind_idx"),
    ("overview_durations", (), "jobs_finished_kind_idx"),
]


def _list(owner: str | None, **filters: Any) -> tuple[str, tuple[Any, ...]]:
    """api_list_jobs (or api_list_all_jobs) with ``filters``, a page of 50."""
    f = {
        "states": None,
        "kinds": None,
        "after": None,
        "before": None,
        "cursor": (None, None),
        "error_kinds": None,
    } | filters
    name = "api_list_jobs" if owner is not None else "api_list_all_jobs"
    return name, (
        owner,
        f["states"],
        f["kinds"],
        f["after"],
        f["before"],
        *f["cursor"],
        51,
        f["error_kinds"],
    )


ANY_INDEX: list[tuple[str, tuple[Any, ...]]] = [
    ("jobs_running", ()),
    _list(None),
    _list(None, states=["failed"]),
    _list(None, states=["pending"], kinds=["k3"]),
    _list(None, states=["failed"], kinds=["k3"], error_kinds=["timeout"]),
    _list(None, after=NOW - timedelta(days=20), before=NOW - timedelta(days=19)),
    _list(None, cursor=(NOW - timedelta(days=10), "00000000-0000-0000-0000-000000000000")),
    _list("o7", states=["failed"], error_kinds=["timeout"]),
]


async def _plan(conn: asyncpg.Connection, name: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {queries()[name]}", *args)
    return plan_nodes(json.loads(plan) if isinstance(plan, str) else plan)


def _on_jobs(nodes: list[dict[str, Any]]) -> list[tuple[str, str | None, int | None]]:
    return [
        (n["Node Type"], n.get("Index Name"), n.get("Heap Fetches"))
        for n in nodes
        if n.get("Relation Name") == "jobs"
    ]


async def test_every_statement_reads_its_index_at_a_million_rows(
    conn: asyncpg.Connection,
) -> None:
    await load_history(conn, ROWS)
    wrong: dict[str, object] = {}

    for name, args, index in OVERVIEW:
        scans = _on_jobs(await _plan(conn, name, args))
        if scans != [("Index Only Scan", index, 0)]:
            wrong[name] = scans
    for name, args in ANY_INDEX:
        scans = _on_jobs(await _plan(conn, name, args))
        if not scans or any(kind == "Seq Scan" for kind, _, _ in scans):
            wrong[f"{name}{args[1:3]}"] = scans

    assert wrong == {}
