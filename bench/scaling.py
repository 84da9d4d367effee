"""Scaling: the same batch of small exports with 1, 2 and 4 ``exportd run`` processes.

Each run starts its daemons (default settings: 4 jobs at once each) on a
fresh copy of one database, all idle and listening, then inserts the batch
(``--jobs`` CSV exports of ``--rows`` rows each, about 113 bytes a row) in one
transaction; the clock runs from that commit until every job is completed.
All runs use the same Postgres and the same ``rclone serve s3``.

Besides wall time, the CPU each part used is measured over the run (psutil:
the daemons, Postgres with all its backends, the S3 server, the machine), so
the table shows what the extra daemons had to share.

    make bench-scaling                  # or: .venv/bin/python bench/scaling.py --jobs 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    CpuMeter,
    add_admin_url,
    daemon_env,
    database_url,
    exportd_run,
    postmaster,
    rclone,
    rclone_process,
    s3_client,
)
from bench.csv_export import definitions, prepare_database  # noqa: E402

SOURCE = "bench_queue_scaling"
BUCKET = "scaling"


async def copy_database(admin: str, name: str) -> str:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {SOURCE}")
    finally:
        await conn.close()
    return database_url(admin, name)


async def drop_databases(admin: str, names: list[str]) -> None:
    conn = await asyncpg.connect(admin)
    try:
        for name in names:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def run_batch(dsn: str, jobs: int, rows: int) -> tuple[float, int]:
    """Insert the batch, wait until no job is left; seconds and jobs completed."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute(
            "INSERT INTO exportd.jobs (owner, kind, format)"
            " SELECT 'owner_' || g, $2, 'csv' FROM generate_series(1, $1) AS g",
            jobs,
            f"rows_{rows}",
        )
        while True:
            if not await conn.fetchval(
                "SELECT count(*) FROM exportd.jobs WHERE state IN ('pending', 'processing')"
            ):
                break
            await asyncio.sleep(0.02)  # a poll: the driver has no event to wait on
        seconds = time.perf_counter() - started
        completed = await conn.fetchval(
            "SELECT count(*) FROM exportd.jobs WHERE state = 'completed'"
        )
    finally:
        await conn.close()
    return seconds, int(completed)


def one_run(
    daemons: int, dsn: str, endpoint: str, workdir: Path, jobs: int, rows: int, postgres: int
) -> dict[str, float]:
    defs = workdir / "kinds.toml"
    defs.write_text(definitions([rows]))
    with contextlib.ExitStack() as stack:
        procs = [
            stack.enter_context(
                exportd_run(
                    daemon_env(dsn, endpoint, BUCKET, defs, log_level="warning"),
                    workdir,
                    workdir / f"daemon-{daemons}-{i}.log",
                )
            )
            for i in range(daemons)
        ]
        time.sleep(1.0)  # every daemon idle and listening
        meter = CpuMeter(
            {
                **{f"daemon{i}": p.pid for i, p in enumerate(procs)},
                "postgres": postgres,
                "rclone": rclone_process().pid,
            }
        )
        seconds, completed = asyncio.run(run_batch(dsn, jobs, rows))
        cpu = meter.shares()
    if completed != jobs:
        raise RuntimeError(f"{daemons} daemons: {completed} of {jobs} jobs completed")
    per_daemon = [cpu[f"daemon{i}"] for i in range(daemons)]
    return {
        "seconds": seconds,
        "daemons_cpu": sum(per_daemon),
        "busiest_daemon": max(per_daemon),
        "postgres": cpu["postgres"],
        "rclone": cpu["rclone"],
        "machine": cpu["machine"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rows", type=int, default=3000, help="rows in each export")
    parser.add_argument(
        "--daemons", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4]
    )
    add_admin_url(parser)
    args = parser.parse_args()

    source = asyncio.run(prepare_database(args.admin_url, SOURCE, args.rows))
    postgres = asyncio.run(postmaster(source)).pid
    copies = [f"{SOURCE}_{n}" for n in args.daemons]
    results: dict[int, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="exportd-bench-") as tmp, rclone(Path(tmp)) as url:
            s3_client(url).create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
            for n, name in zip(args.daemons, copies, strict=True):
                print(f"{n} daemon(s)...", file=sys.stderr)
                dsn = asyncio.run(copy_database(args.admin_url, name))
                results[n] = one_run(n, dsn, url, Path(tmp), args.jobs, args.rows, postgres)
    finally:
        asyncio.run(drop_databases(args.admin_url, [*copies, SOURCE]))

    base = results[args.daemons[0]]["seconds"]
    print(
        f"\n{args.jobs} CSV exports of {args.rows:,} rows each, 4 jobs at once per daemon\n\n"
        "| daemons | seconds | jobs/s | speedup | daemons CPU | busiest daemon CPU "
        "| Postgres CPU | rclone CPU | machine CPU |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for n, r in results.items():
        print(
            f"| {n} | {r['seconds']:.2f} | {args.jobs / r['seconds']:.1f} "
            f"| {base / r['seconds']:.2f}x | {r['daemons_cpu']:.0%} | {r['busiest_daemon']:.0%} "
            f"| {r['postgres']:.0%} | {r['rclone']:.0%} | {r['machine']:.0%} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
