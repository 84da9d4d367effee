"""The operator's overview on a long history: its time, beside what counting the
whole table would cost.

One database with ``--rows`` job rows (tests/support/big_history.py: 1%
pending, a few processing, 1% failed, the rest completed over ~29 days, then
vacuumed as autovacuum would). Each contender runs ``--repeat`` times after a
warm-up, on one connection pool; the table gives the median and the 95th
percentile in milliseconds, and each contender's median as a ratio of the
overview's:

- overview: ``PgJobStore.overview()``, every figure of the dashboard in one
  read-only snapshot (counts of live jobs, of jobs finished in the last day,
  per-minute throughput, durations, pauses, webhooks, workers);
- the statements alone (overview_live, overview_finished, ...), each timed;
- whole-table count: ``count(*) GROUP BY state, kind`` over every row, what
  the overview avoids;
- the dashboard's list: a page of every owner's failed jobs, and of one kind's.

Then what the overview's indexes (migration 0013) cost the queue's hot path:
bench/claim.py's drain (4 claimers claim batches of 8 and complete them at
once: no-op jobs, the queue's own cost) on copies of one backlog of 20,000
jobs, with the indexes and with them dropped, side by side for
``--hot-path-rounds`` rounds; each round's ratio, and their median.

    .venv/bin/python bench/overview.py [--rows 1000000] [--repeat 30] [--hot-path-rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.claim import drain, prepare
from bench.common import add_admin_url, create_database, database_url
from exportd import database
from exportd.queue.migrations import migrate
from exportd.queue.overview import MINUTES
from exportd.queue.postgres import PgJobStore
from exportd.queue.sql import queries
from tests.support.big_history import load_history

WHOLE_TABLE = "SELECT state, kind, count(*) FROM exportd.jobs GROUP BY state, kind"
# The indexes migration 0013 adds to exportd.jobs, dropped for the comparison.
OVERVIEW_INDEXES = (
    "exportd.jobs_live_kind_idx, exportd.jobs_finished_kind_idx, exportd.jobs_created_idx"
)


async def timed(run: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` runs, after one warm-up run."""
    await run()
    took = []
    for _ in range(repeat):
        start = time.perf_counter()
        await run()
        took.append((time.perf_counter() - start) * 1000)
    return took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_admin_url(parser)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--hot-path-rounds", type=int, default=5)
    args = parser.parse_args()

    name = f"exportd_bench_overview_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(args.admin_url, name, fresh=True)
    conn = await database.connect(dsn)
    try:
        await migrate(conn)
        start = time.perf_counter()
        await load_history(conn, args.rows)
        print(f"loaded {args.rows:,} rows in {time.perf_counter() - start:.1f} s\n")
    finally:
        await conn.close()

    q = queries()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        store = PgJobStore(pool)
        contenders: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("overview (all figures, one snapshot)", store.overview),
            ("  overview_live", lambda: pool.fetch(q["overview_live"])),
            ("  overview_finished (1 day)", lambda: pool.fetch(q["overview_finished"], 86400.0)),
            ("  overview_minutes", lambda: pool.fetch(q["overview_minutes"], MINUTES)),
            ("  overview_durations", lambda: pool.fetch(q["overview_durations"])),
            ("  jobs_running (live progress)", store.running_jobs),
            ("whole-table count by state, kind", lambda: pool.fetch(WHOLE_TABLE)),
            (
                "list: every owner's failed jobs, 50",
                lambda: store.list_jobs(None, states=["failed"], limit=51),
            ),
            (
                "list: one kind's timeouts, 50",
                lambda: store.list_jobs(None, kinds=["k3"], error_kinds=["timeout"], limit=51),
            ),
        ]
        results = [(label, await timed(run, args.repeat)) for label, run in contenders]
    finally:
        await pool.close()
        admin = await database.connect(args.admin_url)
        try:
            await admin.execute(f"DROP DATABASE {name}")
        finally:
            await admin.close()

    base = statistics.median(results[0][1])
    print(f"| at {args.rows:,} rows | p50 ms | p95 ms | p50 / overview's |")
    print("|---|---:|---:|---:|")
    for label, took in results:
        p50 = statistics.median(took)
        p95 = statistics.quantiles(took, n=20)[-1]
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {p50 / base:.2f} |")
    if args.hot_path_rounds > 0:
        await hot_path(args.admin_url, args.hot_path_rounds)


async def hot_path(admin_url: str, rounds: int) -> None:
    """Claims and completions per second with the overview's indexes and without."""
    admin = await asyncpg.connect(admin_url)
    base = f"exportd_bench_hot_{uuid.uuid4().hex[:8]}"
    made: list[str] = []
    ratios: list[float] = []
    print("\n| round | with the indexes, jobs/s | without, jobs/s | with / without |")
    print("|---|---:|---:|---:|")
    try:
        await prepare(admin, admin_url, base, 20000, 1000, False)
        for number in range(1, rounds + 1):
            rates: dict[str, float] = {}
            for label in ("with", "without"):
                name = f"{base}_{label}_{number}"
                made.append(name)
                await admin.execute(f"CREATE DATABASE {name} TEMPLATE {base}")
                if label == "without":
                    copy = await asyncpg.connect(database_url(admin_url, name))
                    try:
                        await copy.execute(f"DROP INDEX {OVERVIEW_INDEXES}")
                    finally:
                        await copy.close()
                seconds, done = await drain(database_url(admin_url, name), None, 4, 8)
                rates[label] = done / seconds
            ratios.append(rates["with"] / rates["without"])
            print(
                f"| {number} | {rates['with']:,.0f} | {rates['without']:,.0f} | {ratios[-1]:.2f} |"
            )
    finally:
        for name in [*made, base]:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
    print(f"\nmedian of with / without: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
