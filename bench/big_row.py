"""Peak memory of an export with one very large row, per format.

COPY sends a row as one CopyData message, and asyncpg hands a message over
only once it holds all of it, so a job's memory is the parts term
(part size x (parts in flight + 1)) plus a term per row. This exports a table
whose only row holds a text value of ``--sizes`` MB, once per format, each
through an ``exportd run`` daemon of its own (so each peak is that export's
alone), and prints the daemon's peak RSS against its idle RSS, the parts-term
prediction and the row's size. A last run exports the largest row with
``EXPORTD_MAX_ROW_BYTES`` at ``--limit-mb`` and prints what the refused row
cost.

    make bench                         # csv_export.py, then this (50 and 200 MB)
    .venv/bin/python bench/big_row.py --sizes 50,200 --formats csv,jsonl.gz
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    add_admin_url,
    create_database,
    daemon_env,
    exportd_run,
    postmaster,
    rclone,
    rclone_process,
    s3_client,
)
from bench.csv_export import Bench, Sampler  # noqa: E402
from exportd.queue.migrations import migrate  # noqa: E402
from exportd.s3.parts import choose_part_size, upload_memory_bound  # noqa: E402

MB = 1_000_000
FORMATS = "csv,csv.gz,jsonl,jsonl.gz,json,zip"
# The daemon's default part size (for its default EXPORTD_S3_MAX_EXPORT_BYTES)
# and parts in flight: the parts term the README predicts.
PARTS_IN_FLIGHT = 2
PARTS_TERM = upload_memory_bound(choose_part_size(100 * 1024**3), PARTS_IN_FLIGHT)

TABLE = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE IF NOT EXISTS bench.big_rows (size_mb int PRIMARY KEY, body text NOT NULL);
"""


def definitions(sizes: list[int]) -> str:
    """One kind per row size, ``big_<mb>``: the row of that size, with its id."""
    return "\n".join(
        f'[kinds.big_{mb}]\ndescription = "One row of {mb} MB"\n'
        f'query = "SELECT size_mb, body FROM bench.big_rows WHERE size_mb = {mb} '
        'AND length(:owner) > 0"\n'
        for mb in sizes
    )


async def prepare(admin: str, sizes: list[int]) -> str:
    dsn = await create_database(admin, "exportd_bench_big_row", fresh=False)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(TABLE)
        for mb in sizes:
            # Digits of increasing numbers: incompressible enough that gzip has
            # work to do, and text COPY writes as it is (no quoting, no escapes).
            await conn.execute(
                "INSERT INTO bench.big_rows VALUES ($1::int, "
                "left(repeat(md5($1::int::text), $2::int / 32 + 1), $2::int)) "
                "ON CONFLICT DO NOTHING",
                mb,
                mb * MB,
            )
        await conn.execute("TRUNCATE exportd.jobs")
    finally:
        await conn.close()
    return dsn


@dataclass
class Row:
    fmt: str
    mb: int
    limit: int
    idle: int
    peak: int
    size: int
    state: str
    error: str


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_admin_url(parser)
    parser.add_argument("--sizes", default="50,200", help="row sizes in MB")
    parser.add_argument("--formats", default=FORMATS)
    parser.add_argument(
        "--limit-mb", type=int, default=64, help="EXPORTD_MAX_ROW_BYTES of the refusal run, MB"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    formats = [f for f in args.formats.split(",") if f]
    dsn = asyncio.run(prepare(args.admin_url, sizes))
    server = asyncio.run(postmaster(dsn))
    results: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, rclone(Path(tmp)) as endpoint:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        client = s3_client(endpoint)
        client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        bench = Bench(dsn, endpoint, bucket, Path(tmp), "", client, server, rclone_process())
        kinds = Path(tmp) / "kinds.toml"
        kinds.write_text(definitions(sizes))
        runs = [(mb, fmt, max(sizes) * 2 * MB) for mb in sizes for fmt in formats]
        runs.append((max(sizes), "csv", args.limit_mb * MB))
        for mb, fmt, limit in runs:
            print(f"{mb} MB as {fmt}...", file=sys.stderr)
            env = daemon_env(
                dsn,
                endpoint,
                bucket,
                kinds,
                poll_interval="0.05",
                log_level="warning",
                max_row_bytes=str(limit),
            )
            with exportd_run(env, Path(tmp)) as proc:
                daemon = psutil.Process(proc.pid)
                idle = daemon.memory_info().rss
                results.append(_one(bench, daemon, mb, fmt, limit, idle))
    print(
        f"\nOne row of N MB (a text value), each export by a fresh daemon; parts term "
        f"(part size x (parts in flight + 1)) = {PARTS_TERM / MB:.0f} MB:\n"
    )
    print(
        "| format | row MB | EXPORTD_MAX_ROW_BYTES MB | state | object MB | idle RSS MB "
        "| peak RSS MB "
        "| peak - idle MB | (peak - idle - parts term) / row |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        extra = r.peak - r.idle
        print(
            f"| {r.fmt} | {r.mb} | {r.limit / MB:.0f} | {r.state} | {r.size / MB:.0f} | "
            f"{r.idle / MB:.0f} | "
            f"{r.peak / MB:.0f} | {extra / MB:.0f} | {(extra - PARTS_TERM) / (r.mb * MB):.2f} |"
        )
    for r in results:
        if r.error:
            print(f"\n{r.mb} MB as {r.fmt} failed: {r.error}")
    return 0


def _one(bench: Bench, daemon: psutil.Process, mb: int, fmt: str, limit: int, idle: int) -> Row:
    async def job() -> tuple[str, str | None, str]:
        conn = await asyncpg.connect(bench.dsn)
        try:
            job_id = await conn.fetchval(
                "SELECT exportd.enqueue('bench', $1, '{}'::jsonb, $2)", f"big_{mb}", fmt
            )
            while True:
                row = await conn.fetchrow(
                    "SELECT state, object_key, error FROM exportd.jobs WHERE id = $1", job_id
                )
                if row["state"] in ("completed", "failed"):
                    return str(row["state"]), row["object_key"], str(row["error"] or "")
                await asyncio.sleep(0.01)
        finally:
            await conn.close()

    with Sampler(daemon.pid, bench.postmaster) as sampler:
        state, key, error = asyncio.run(job())
    size = 0
    if key is not None:
        head = bench.client.head_object(Bucket=bench.bucket, Key=key)  # type: ignore[attr-defined]
        size = int(head["ContentLength"])
    return Row(fmt, mb, limit, idle, sampler.peak, size, state, error)


if __name__ == "__main__":
    raise SystemExit(main())
