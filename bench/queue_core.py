"""The queue core against pgqueuer: claim-and-complete throughput and pickup latency.

Both contenders run no-op jobs, each in a process of its own (this file with
``serve``), on the same Postgres, each on a fresh database of its own:

- exportd: the real ``Worker`` with ``PgJobStore`` (its pool and heartbeat
  pool sized as ``exportd run`` sizes them) and the ``Listener``, with a
  runner that does nothing at the ``Runner`` Protocol (no S3): every job is
  claimed, its row locked, its (empty) commit called and the row completed,
  as for a real export;
- pgqueuer: ``PgQueuer`` with a no-op entrypoint, on asyncpg connections,
  with the settings of its own drain benchmark (several queue managers in one
  process, each on a connection of its own, batches of 10).

Throughput: a backlog of ``--jobs`` jobs is inserted first; the clock runs
from the moment the idle contender is told to start until no job is left
pending or running (polled every 20 ms). Pickup latency: the contender idles;
the driver inserts one job at a time, notes the wall clock when its commit
returns, and the contender notes the wall clock when the job reaches its
runner; random gaps between jobs. Both clocks are the same host's.

    make bench-queue                    # or: .venv/bin/python bench/queue_core.py --jobs 20000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import CpuMeter, add_admin_url, create_database  # noqa: E402
from exportd import database  # noqa: E402
from exportd.queue.job import ExportResult  # noqa: E402
from exportd.queue.migrations import migrate  # noqa: E402

DB_PREFIX = "bench_queue_"


# --- The contenders (each in a process of its own) -----------------------------------------


class _Reporter:
    """Writes "<job id> <wall clock>" for each job the contender starts, when asked to."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def picked(self, job_id: object) -> None:
        if self.enabled:
            sys.stdout.write(f"{job_id} {time.time():.6f}\n")
            sys.stdout.flush()


async def _ready_then_go() -> None:
    """Say ready, then wait for the driver's "go" on stdin."""
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit("no go")


async def serve_exportd(dsn: str, concurrency: int, reporter: _Reporter) -> None:
    from exportd.queue.job import JobContext
    from exportd.queue.listener import Listener
    from exportd.queue.postgres import PgJobStore
    from exportd.worker.loop import Worker, WorkerConfig

    class Done:
        async def commit(self) -> ExportResult:
            return ExportResult("noop", 0, 0, "")

        async def abort(self) -> None:
            return None

    class NoopRunner:
        async def run(self, ctx: JobContext) -> Done:
            reporter.picked(ctx.job.id)
            return Done()

    # As ``exportd run`` makes them: concurrency + 3 for the queue, one for heartbeats.
    made = {"command_timeout": 30, "reset": database.keep_session}
    pool = await database.create_pool(dsn, max_size=concurrency + 3, **made)
    beat_pool = await database.create_pool(dsn, max_size=1, **made)
    worker = Worker(
        PgJobStore(pool, heartbeat_pool=beat_pool),
        NoopRunner(),
        WorkerConfig(concurrency=concurrency),
        logger=_quiet_logger(),
    )
    listener = Listener(dsn, worker.wake, worker.on_job_event, logger=_quiet_logger())
    listening = asyncio.create_task(listener.run())
    await listener.connected.wait()
    await _ready_then_go()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.request_stop)
    try:
        await worker.run(grace_seconds=5)
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await pool.close()
        await beat_pool.close()


async def serve_pgqueuer(dsn: str, managers: int, batch: int, reporter: _Reporter) -> None:
    from pgqueuer import PgQueuer
    from pgqueuer.models import Job

    conns = [await asyncpg.connect(dsn) for _ in range(managers)]
    pgqs = [PgQueuer.from_asyncpg_connection(conn) for conn in conns]
    for pgq in pgqs:

        @pgq.entrypoint("noop")
        async def noop(job: Job) -> None:
            reporter.picked(job.id)

    await _ready_then_go()

    def stop() -> None:
        for pgq in pgqs:
            pgq.shutdown.set()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
    await asyncio.gather(*(pgq.run(batch_size=batch) for pgq in pgqs))


def _quiet_logger() -> Any:
    import structlog

    return structlog.wrap_logger(
        structlog.PrintLogger(sys.stderr), wrapper_class=structlog.make_filtering_bound_logger(30)
    )


# --- The driver ------------------------------------------------------------------------------


class ExportdQueue:
    """How the driver enqueues and counts exportd jobs: plain INSERTs into the queue table."""

    async def install(self, conn: asyncpg.Connection) -> None:
        await migrate(conn)

    async def enqueue(self, conn: asyncpg.Connection, count: int) -> list[str]:
        rows = await conn.fetch(
            "INSERT INTO exportd.jobs (owner, kind)"
            " SELECT 'bench', 'noop' FROM generate_series(1, $1) RETURNING id",
            count,
        )
        return [str(r["id"]) for r in rows]

    async def remaining(self, conn: asyncpg.Connection) -> int:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM exportd.jobs WHERE state IN ('pending', 'processing')"
            )
        )

    async def finished_once(self, conn: asyncpg.Connection) -> int:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM exportd.jobs WHERE state = 'completed' AND attempts = 1"
            )
        )


class PgqueuerQueue:
    """The same for pgqueuer, through its own enqueue."""

    async def install(self, conn: asyncpg.Connection) -> None:
        await self._queries(conn).install()

    async def enqueue(self, conn: asyncpg.Connection, count: int) -> list[str]:
        ids = await self._queries(conn).enqueue(["noop"] * count, [None] * count, [0] * count)
        return [str(i) for i in ids]

    async def remaining(self, conn: asyncpg.Connection) -> int:
        return int(await conn.fetchval("SELECT count(*) FROM pgqueuer"))

    async def finished_once(self, conn: asyncpg.Connection) -> int:
        return int(
            await conn.fetchval("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")
        )

    @staticmethod
    def _queries(conn: asyncpg.Connection) -> Any:
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        return Queries(AsyncpgDriver(conn))


@dataclass
class Contender:
    name: str
    label: str
    argv: list[str]
    queue: ExportdQueue | PgqueuerQueue

    @property
    def database(self) -> str:
        return f"{DB_PREFIX}{self.name.replace('-', '_')}"


def contenders(args: argparse.Namespace) -> list[Contender]:
    me = [sys.executable, __file__, "serve"]
    found = [
        Contender(
            f"exportd-{c}",
            f"exportd (concurrency {c})",
            [*me, "exportd", "--concurrency", str(c)],
            ExportdQueue(),
        )
        for c in args.exportd_concurrency
    ]
    found.append(
        Contender(
            "pgqueuer",
            f"pgqueuer ({args.pgqueuer_managers} managers, batch {args.pgqueuer_batch})",
            [
                *me,
                "pgqueuer",
                "--managers",
                str(args.pgqueuer_managers),
                "--batch",
                str(args.pgqueuer_batch),
            ],
            PgqueuerQueue(),
        )
    )
    return found


async def fresh_database(admin: str, contender: Contender) -> str:
    dsn = await create_database(admin, contender.database, fresh=True)
    conn = await database.connect(dsn)
    try:
        await contender.queue.install(conn)
    finally:
        await conn.close()
    return dsn


@contextlib.asynccontextmanager
async def started(contender: Contender, dsn: str, report: bool) -> AsyncIterator[Any]:
    """The contender's process, idle and ready; SIGTERM at the end."""
    argv = [*contender.argv, "--dsn", dsn, *(["--report"] if report else [])]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"{contender.name} did not start")
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def go(proc: Any) -> None:
    proc.stdin.write(b"go\n")


async def throughput(
    admin: str, contender: Contender, jobs: int, profile: Path | None
) -> dict[str, float]:
    dsn = await fresh_database(admin, contender)
    conn = await asyncpg.connect(dsn)
    try:
        await contender.queue.enqueue(conn, jobs)
        await conn.execute("VACUUM ANALYZE")
        async with started(contender, dsn, report=False) as proc:
            meter = CpuMeter({"contender": proc.pid})
            spy = None
            if profile is not None:
                spy = await asyncio.create_subprocess_exec(
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(proc.pid),
                    "--format",
                    "raw",
                    "--output",
                    str(profile / f"{contender.name}.txt"),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                await asyncio.sleep(1.0)  # py-spy attached
            go(proc)
            begun = time.perf_counter()
            while True:
                if not await contender.queue.remaining(conn):
                    break
                await asyncio.sleep(0.02)  # a poll: the driver has no event to wait on
            seconds = time.perf_counter() - begun
            cpu = meter.shares()
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                await spy.wait()
        finished = await contender.queue.finished_once(conn)
    finally:
        await conn.close()
    if finished != jobs:
        raise RuntimeError(f"{contender.name}: {finished} of {jobs} jobs finished once")
    return {"seconds": seconds, "jobs_per_s": jobs / seconds, **cpu}


async def pickup(admin: str, contender: Contender, samples: int) -> dict[str, float]:
    dsn = await create_database(admin, contender.database, fresh=False)
    conn = await asyncpg.connect(dsn)
    delays: list[float] = []
    try:
        async with started(contender, dsn, report=True) as proc:
            go(proc)
            await asyncio.sleep(1.0)  # let it settle into idling
            for _ in range(samples):
                [job_id] = await contender.queue.enqueue(conn, 1)
                committed = time.time()
                line = await asyncio.wait_for(proc.stdout.readline(), 10)
                picked_id, picked_at = line.decode().split()
                if picked_id != job_id:
                    raise RuntimeError(f"{contender.name}: picked {picked_id}, expected {job_id}")
                delays.append((float(picked_at) - committed) * 1000)
                await asyncio.sleep(random.uniform(0.02, 0.1))
    finally:
        await conn.close()
    delays.sort()
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": delays[-1]}


async def drive(args: argparse.Namespace) -> int:
    rivals = contenders(args)
    speed: dict[str, dict[str, float]] = {}
    latency: dict[str, dict[str, float]] = {}
    try:
        for contender in rivals:
            print(f"throughput: {contender.label}...", file=sys.stderr)
            speed[contender.name] = await throughput(
                args.admin_url, contender, args.jobs, args.profile
            )
        for contender in rivals:
            print(f"pickup latency: {contender.label}...", file=sys.stderr)
            latency[contender.name] = await pickup(args.admin_url, contender, args.samples)
    finally:
        admin = await asyncpg.connect(args.admin_url)
        try:
            for contender in rivals:
                await admin.execute(f"DROP DATABASE IF EXISTS {contender.database} WITH (FORCE)")
        finally:
            await admin.close()

    base = speed["pgqueuer"]["jobs_per_s"]
    print(f"\nThroughput: {args.jobs:,} no-op jobs, backlog drained by one process\n")
    print(
        "| contender | seconds | jobs/s | jobs/s vs pgqueuer | contender CPU | machine CPU |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    for c in rivals:
        r = speed[c.name]
        print(
            f"| {c.label} | {r['seconds']:.2f} | {r['jobs_per_s']:,.0f} "
            f"| {r['jobs_per_s'] / base:.2f}x | {r['contender']:.0%} | {r['machine']:.0%} |"
        )
    print(f"\nPickup latency: INSERT commit to the job reaching its runner, {args.samples} jobs\n")
    print("| contender | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|")
    for c in rivals:
        r = latency[c.name]
        print(f"| {c.label} | {r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['max']:.1f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run one contender (started by the driver)")
    serve.add_argument("which", choices=["exportd", "pgqueuer"])
    serve.add_argument("--dsn", required=True)
    serve.add_argument("--concurrency", type=int, default=4)
    serve.add_argument("--managers", type=int, default=5)
    serve.add_argument("--batch", type=int, default=10)
    serve.add_argument("--report", action="store_true")
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument(
        "--exportd-concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[4, 50],
        help="comma-separated EXPORTD_CONCURRENCY values, one contender each",
    )
    parser.add_argument("--pgqueuer-managers", type=int, default=5)
    parser.add_argument("--pgqueuer-batch", type=int, default=10)
    parser.add_argument(
        "--profile",
        type=Path,
        help="a folder: py-spy stacks (raw format) of each contender while it drains the backlog",
    )
    add_admin_url(parser)
    args = parser.parse_args()
    if args.command == "serve":
        reporter = _Reporter(args.report)
        if args.which == "exportd":
            asyncio.run(serve_exportd(args.dsn, args.concurrency, reporter))
        else:
            asyncio.run(serve_pgqueuer(args.dsn, args.managers, args.batch, reporter))
        return 0
    return asyncio.run(drive(args))


if __name__ == "__main__":
    sys.exit(main())
