"""GET /v1/jobs/{id} under concurrent load, against a running ``exportd run``.

The daemon runs as it would in production (worker, reaper, listener, API, one
process) on a database of its own and ``rclone serve s3``; the load comes from
a separate process (this file with ``--drive``), an aiohttp client keeping
``--concurrency`` requests in flight for ``--seconds`` after a warm-up. Each
scenario reports requests per second and the p50/p99/max latency seen by the
client, as a Markdown table.

Scenarios: a pending job (one indexed read), a completed job (the read plus a
freshly presigned download URL, signed in-process), and the completed job with
the access log switched off (EXPORTD_ACCESS_LOG=false), to show what logging
costs.

    make bench-api                    # or: .venv/bin/python bench/api_load.py --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    add_admin_url,
    create_database,
    daemon_env,
    exportd_run,
    rclone,
    s3_client,
)
from exportd.queue.migrations import migrate  # noqa: E402
from tests.support.fixtures_s3 import free_port  # noqa: E402

TOKEN = "bench-token"
KINDS = """
[kinds.report]
query = "SELECT 1 AS id WHERE :owner <> ''"
"""


# --- The load generator (its own process) ------------------------------------------------


async def drive(url: str, concurrency: int, seconds: float, warmup: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {TOKEN}"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        measure_from = time.perf_counter() + warmup
        stop_at = measure_from + seconds

        async def client() -> None:
            nonlocal errors
            while (started := time.perf_counter()) < stop_at:
                async with session.get(url) as response:
                    await response.read()
                    ok = response.status == 200
                if started >= measure_from:
                    latencies.append(time.perf_counter() - started)
                    errors += not ok

        cpu_before = time.process_time()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        cpu = time.process_time() - cpu_before
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "max_ms": latencies[-1] * 1000,
        "driver_cpu": cpu / (seconds + warmup),
    }


# --- The daemon and the scenarios ---------------------------------------------------------


@dataclass
class Scenario:
    name: str
    job: str  # 'pending' or 'completed'
    env: dict[str, str]


async def prepare(admin: str, name: str, bucket: str, endpoint: str) -> tuple[str, dict[str, str]]:
    dsn = await create_database(admin, name, fresh=True)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        # A realistic table: the job looked up among many of many owners.
        await conn.execute(
            "INSERT INTO exportd.jobs (owner, kind, state, finished_at, attempts)"
            " SELECT 'owner_' || (g % 500), 'report', 'failed', now(), 1"
            " FROM generate_series(1, 50000) AS g"
        )
        pending = await conn.fetchval(
            "INSERT INTO exportd.jobs (owner, kind, run_after) VALUES"
            " ('owner_1', 'report', now() + interval '1 day') RETURNING id"
        )
        key = f"exports/owner_1/{uuid.uuid4()}/report.csv"
        s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=b"id\n1\n")  # type: ignore[attr-defined]
        completed = await conn.fetchval(
            "INSERT INTO exportd.jobs (owner, kind, state, object_key, size_bytes, row_count,"
            " finished_at, expires_at, progress, attempts)"
            " VALUES ('owner_1', 'report', 'completed', $1, 5, 1, now(),"
            " now() + interval '7 days', 100, 1) RETURNING id",
            key,
        )
        await conn.execute("ANALYZE exportd.jobs")
    finally:
        await conn.close()
    return dsn, {"pending": str(pending), "completed": str(completed)}


def run_scenario(
    scenario: Scenario,
    base_env: dict[str, str],
    ids: dict[str, str],
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, float]:
    env = base_env | {"EXPORTD_API_PORT": str(free_port())} | scenario.env
    with exportd_run(env, workdir, workdir / "daemon.log") as proc:
        url = f"http://127.0.0.1:{env['EXPORTD_API_PORT']}/v1/jobs/{ids[scenario.job]}"
        server = psutil.Process(proc.pid)
        machine_before, server_before = psutil.cpu_times(), server.cpu_times()
        profiler = None
        if args.profile:
            svg = Path(args.profile) / f"{scenario.job}-{len(scenario.env)}.svg"
            profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "-p",
                    str(proc.pid),
                    "-o",
                    str(svg),
                    "--format",
                    "raw",
                    "-d",
                    str(int(args.seconds + args.warmup)),
                ],
                stdout=subprocess.DEVNULL,
            )
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--drive",
                url,
                "--concurrency",
                str(args.concurrency),
                "--seconds",
                str(args.seconds),
                "--warmup",
                str(args.warmup),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        server_after, machine_after = server.cpu_times(), psutil.cpu_times()
        if profiler is not None:
            profiler.wait()
    result: dict[str, float] = json.loads(out.stdout)
    wall = args.seconds + args.warmup
    result["server_cpu"] = (
        server_after.user + server_after.system - server_before.user - server_before.system
    ) / wall
    spent = {
        f: getattr(machine_after, f) - getattr(machine_before, f) for f in machine_after._fields
    }
    total = sum(spent.values())
    busy = (total - spent["idle"] - spent.get("iowait", 0.0)) / total * (os.cpu_count() or 1)
    result["machine_cpu"] = busy
    return result


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = [
        "| scenario | requests/s | p50 ms | p99 ms | max ms | non-200 "
        "| daemon CPU | daemon CPU µs/request | load generator CPU | machine CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['max_ms']:.1f} | {int(r['errors'])} | {r['server_cpu']:.0%} | "
            f"{r['server_cpu'] / r['rps'] * 1e6:,.0f} | "
            f"{r['driver_cpu']:.0%} | {r['machine_cpu']:.0%} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--profile", help="a folder for py-spy flame graphs of the daemon")
    add_admin_url(parser)
    args = parser.parse_args()
    if args.drive:
        result = asyncio.run(drive(args.drive, args.concurrency, args.seconds, args.warmup))
        print(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory() as tmp, rclone(Path(tmp)) as endpoint:
        workdir = Path(tmp)
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        s3_client(endpoint).create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        dsn, ids = asyncio.run(prepare(args.admin_url, "exportd_bench_api", bucket, endpoint))
        (workdir / "kinds.toml").write_text(KINDS)
        base_env = daemon_env(dsn, endpoint, bucket, workdir / "kinds.toml", api_tokens=TOKEN)
        scenarios = [
            Scenario("pending job (one read)", "pending", {}),
            Scenario("completed job (read + presign)", "completed", {}),
            Scenario(
                "completed job, access log off",
                "completed",
                {"EXPORTD_ACCESS_LOG": "false"},
            ),
        ]
        rows = [(s.name, run_scenario(s, base_env, ids, args, workdir)) for s in scenarios]
    print(
        f"GET /v1/jobs/{{id}}: {args.concurrency} concurrent requests, "
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up, {os.cpu_count()} cores\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
