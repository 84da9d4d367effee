"""Claims per second: the plain claim against the claim with a per-owner limit.

Both contenders run on copies of one database holding the same backlog and
the same history of finished rows. Several claimers stand for several
daemons; each claims a batch, then completes it at once (the jobs are
trivial), so the figure is the queue's own cost. The per-owner claim also
takes turns under an advisory lock: that serialisation is part of what is
measured.

Two backlogs: "spread" (jobs spread over many owners, none at its limit:
the price of the limit itself) and "heavy" (one owner with half the jobs:
the limit at work, that owner's jobs drain at most limit x claimers at a
time).

    .venv/bin/python bench/claim.py [--jobs 20000] [--claimers 4] [--batch 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_admin_url, database_url
from exportd import database
from exportd.queue.migrations import migrate
from exportd.queue.postgres import PgJobStore

LEASE = 30.0


async def prepare(
    admin: asyncpg.Connection, admin_url: str, name: str, jobs: int, owners: int, heavy: bool
) -> None:
    await admin.execute(f"CREATE DATABASE {name}")
    conn = await database.connect(database_url(admin_url, name))
    try:
        await migrate(conn)
        await conn.execute(
            "INSERT INTO exportd.jobs (owner, kind, state, attempts, finished_at)"
            " SELECT 'old' || (g % 500), 'k', 'completed', 1, now()"
            " FROM generate_series(1, 100000) AS g"
        )
        await conn.execute(
            "INSERT INTO exportd.jobs (owner, kind, priority)"
            " SELECT CASE WHEN $3 AND g % 2 = 0 THEN 'heavy' ELSE 'o' || (g % $2) END, 'k', g % 3"
            " FROM generate_series(1, $1) AS g",
            jobs,
            owners,
            heavy,
        )
        await conn.execute("VACUUM ANALYZE exportd.jobs")
    finally:
        await conn.close()


async def drain(dsn: str, per_owner: int | None, claimers: int, batch: int) -> tuple[float, int]:
    pool = await database.create_pool(dsn, min_size=claimers, max_size=claimers + 1)
    done = 0
    try:
        store = PgJobStore(pool, max_per_owner=per_owner)

        async def claimer(i: int) -> int:
            count = 0
            while jobs := await store.claim(f"bench-{i}", batch, LEASE):
                await pool.execute(
                    "UPDATE exportd.jobs SET state = 'completed', finished_at = now(),"
                    " lease_expires_at = NULL WHERE id = ANY($1::uuid[])",
                    [j.id for j in jobs],
                )
                count += len(jobs)
            return count

        started = time.perf_counter()
        counts = await asyncio.gather(*(claimer(i) for i in range(claimers)))
        seconds = time.perf_counter() - started
        done = sum(counts)
    finally:
        await pool.close()
    return seconds, done


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--owners", type=int, default=1000)
    parser.add_argument("--claimers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--per-owner", type=int, default=2)
    add_admin_url(parser)
    args = parser.parse_args()

    admin = await asyncpg.connect(args.admin_url)
    results: dict[tuple[str, str], tuple[float, int]] = {}
    try:
        for backlog in ("spread", "heavy"):
            base = f"exportd_bench_claim_{uuid.uuid4().hex[:8]}"
            names = {"plain": f"{base}_plain", "per-owner": f"{base}_fair"}
            try:
                heavy = backlog == "heavy"
                await prepare(admin, args.admin_url, base, args.jobs, args.owners, heavy)
                for name in names.values():
                    await admin.execute(f"CREATE DATABASE {name} TEMPLATE {base}")
                for label, limit in (("plain", None), ("per-owner", args.per_owner)):
                    results[backlog, label] = await drain(
                        database_url(args.admin_url, names[label]), limit, args.claimers, args.batch
                    )
            finally:
                for name in [*names.values(), base]:
                    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()

    print(
        f"{args.jobs} jobs, {args.owners} owners, {args.claimers} claimers, "
        f"batches of {args.batch}, per-owner limit {args.per_owner}"
    )
    print("| backlog | claim | jobs | seconds | jobs/s | time vs plain |")
    print("|---|---|---:|---:|---:|---:|")
    for (backlog, label), (seconds, done) in results.items():
        plain_seconds = results[backlog, "plain"][0]
        print(
            f"| {backlog} | {label} | {done} | {seconds:.2f} | {done / seconds:,.0f} "
            f"| {seconds / plain_seconds:.2f}x |"
        )
    return 0 if all(done == args.jobs for _, done in results.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
