"""CSV export to S3: exportd against the alternatives, side by side, in one run.

Contenders, on the same table, database and S3 server (``rclone serve s3``):

- exportd: an ``exportd run`` process exporting one job (COPY streamed into
  a multipart upload);
- pipeline: ``psql -c "\\copy (query) to stdout csv header" | aws s3 cp - s3://...``
  (with ``--formats csv.gz``, also ``... | gzip -1 | aws s3 cp -``);
- row loop: rows fetched in Python, written with csv.writer, file uploaded.

Wall time runs from the moment a contender is asked to export until its
object is complete in S3. Peak RSS is the largest sum of the resident sizes
of the contender's processes, sampled every 10 ms (exportd: the daemon,
whose baseline includes its HTTP API and connection pools).

    .venv/bin/python bench/csv_export.py --rows 2000000
    .venv/bin/python bench/csv_export.py --rows 1000000 --formats csv,csv.gz,jsonl --skip-rowloop

needs psql on PATH and the AWS CLI at --aws (``make bench`` installs it in
its own environment, since it pins botocore apart from aiobotocore).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
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
    rclone,
    s3_client,
)
from exportd.migrate import migrate  # noqa: E402
from tests.fixtures_s3 import ACCESS_KEY, SECRET_KEY  # noqa: E402

QUERY = "SELECT id, owner, created_at, amount, status, note FROM bench.rows ORDER BY id"

TABLE = """
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.rows;
CREATE TABLE bench.rows (
    id bigint PRIMARY KEY, owner text NOT NULL, created_at timestamptz NOT NULL,
    amount numeric(12, 2) NOT NULL, status text NOT NULL, note text
);
INSERT INTO bench.rows
SELECT g, 'owner_' || (g % 1000),
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
       round((g % 100000) * 1.37, 2),
       (ARRAY['open', 'shipped', 'delivered', 'returned'])[1 + g % 4],
       CASE WHEN g % 10 = 0 THEN NULL
            WHEN g % 10 = 1 THEN 'a note, with "quotes"'
            ELSE md5(g::text) || ' ' || md5((g * 7)::text) END
FROM generate_series(1, $1::bigint) AS g;
ANALYZE bench.rows;
"""

DEFINITIONS = f'''
[kinds.rows]
description = "Every benchmark row"
query = "{QUERY} -- :owner"
'''


@dataclass
class Result:
    name: str
    seconds: float
    peak_rss: int
    size: int
    sha256: str


class RssSampler:
    """Peak of the summed RSS of a process and its descendants."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            with contextlib.suppress(psutil.Error):
                procs = [self.root, *self.root.children(recursive=True)]
                for proc in procs:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def object_digest(client: object, bucket: str, key: str) -> tuple[int, str]:
    body = client.get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[attr-defined]
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: body.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


async def prepare_database(admin: str, name: str, rows: int) -> str:
    dsn = await create_database(admin, name, fresh=False)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        existing = (
            await conn.fetchval("SELECT count(*) FROM bench.rows")
            if await conn.fetchval("SELECT to_regclass('bench.rows') IS NOT NULL")
            else -1
        )
        if existing != rows:
            print(f"loading {rows:,} rows...", file=sys.stderr)
            await conn.execute(TABLE.replace("$1::bigint", str(int(rows))))
        await conn.execute("TRUNCATE exportd.jobs")
    finally:
        await conn.close()
    return dsn


def run_exportd(
    dsn: str, endpoint: str, bucket: str, workdir: Path, fmt: str = "csv"
) -> tuple[float, int, int, str]:
    (workdir / "kinds.toml").write_text(DEFINITIONS)
    env = daemon_env(
        dsn, endpoint, bucket, workdir / "kinds.toml", poll_interval="0.05", log_level="warning"
    )
    with exportd_run(env, workdir) as proc:

        async def one_job() -> tuple[float, str]:
            conn = await asyncpg.connect(dsn)
            try:
                started = time.perf_counter()
                job_id = await conn.fetchval(
                    "SELECT exportd.enqueue('bench', 'rows', '{}'::jsonb, $1)", fmt
                )
                while True:
                    row = await conn.fetchrow(
                        "SELECT state, object_key, error FROM exportd.jobs WHERE id = $1", job_id
                    )
                    if row["state"] in ("completed", "failed"):
                        break
                    await asyncio.sleep(0.01)
                elapsed = time.perf_counter() - started
            finally:
                await conn.close()
            if row["state"] != "completed":
                raise RuntimeError(f"exportd failed: {row['error']}")
            return elapsed, str(row["object_key"])

        idle = psutil.Process(proc.pid).memory_info().rss
        with RssSampler(proc.pid) as sampler:
            elapsed, key = asyncio.run(one_job())
        return elapsed, sampler.peak, idle, key


def timed(name: str, argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall time and peak RSS of a contender run as a process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    with RssSampler(proc.pid) as sampler:
        code = proc.wait()
    elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"{name} exited with {code}")
    return elapsed, sampler.peak


def run_pipeline(
    dsn: str, endpoint: str, bucket: str, key: str, aws: str, gzip: bool = False
) -> tuple[float, int]:
    env = os.environ | {
        "PGTZ": "UTC",
        "PGOPTIONS": "-c DateStyle=ISO,YMD -c IntervalStyle=iso_8601",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }
    copy = f"\\copy ({QUERY}) to stdout csv header"
    script = (
        f'psql "{dsn}" -X -q -v ON_ERROR_STOP=1 -c "{copy}"'
        + (" | gzip -1" if gzip else "")
        + f" | {aws} s3 cp - s3://{bucket}/{key} --endpoint-url {endpoint}"
    )
    return timed("pipeline", ["bash", "-o", "pipefail", "-c", script], env)


def run_rowloop(dsn: str, endpoint: str, bucket: str, key: str) -> tuple[float, int]:
    env = os.environ | {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "BENCH_S3_ENDPOINT": endpoint,
    }
    argv = [sys.executable, str(ROOT / "bench" / "rowloop.py"), dsn, QUERY, bucket, key]
    return timed("row loop", argv, env)


def table(results: list[Result], rows: int) -> str:
    base = results[0]
    lines = [
        "| contender | wall s | rows/s | MB/s | peak RSS MB | time vs exportd |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.seconds:.2f} | {rows / r.seconds:,.0f} | "
            f"{r.size / r.seconds / 1e6:.0f} | {r.peak_rss / 1e6:.0f} | "
            f"{r.seconds / base.seconds:.2f}x |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    add_admin_url(parser)
    parser.add_argument(
        "--aws", default=shutil.which("aws") or str(ROOT / ".venv-aws" / "bin" / "aws")
    )
    parser.add_argument("--skip-rowloop", action="store_true")
    parser.add_argument(
        "--formats",
        default="csv",
        help="comma-separated exportd formats to time besides csv (e.g. csv,csv.gz,jsonl)",
    )
    args = parser.parse_args()

    dsn = asyncio.run(prepare_database(args.admin_url, "exportd_bench", args.rows))
    with tempfile.TemporaryDirectory() as tmp, rclone(Path(tmp)) as endpoint:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        client = s3_client(endpoint)
        client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        results: list[Result] = []

        seconds, peak, idle, key = run_exportd(dsn, endpoint, bucket, Path(tmp))
        results.append(
            Result("exportd (COPY → multipart)", seconds, peak, *object_digest(client, bucket, key))
        )

        seconds, peak = run_pipeline(dsn, endpoint, bucket, "pipeline.csv", args.aws)
        results.append(
            Result(
                "psql \\copy \\| aws s3 cp -",
                seconds,
                peak,
                *object_digest(client, bucket, "pipeline.csv"),
            )
        )

        for fmt in [f for f in args.formats.split(",") if f and f != "csv"]:
            seconds, peak, _, key = run_exportd(dsn, endpoint, bucket, Path(tmp), fmt)
            results.append(
                Result(f"exportd {fmt}", seconds, peak, *object_digest(client, bucket, key))
            )
            if fmt == "csv.gz":
                seconds, peak = run_pipeline(
                    dsn, endpoint, bucket, "pipeline.csv.gz", args.aws, gzip=True
                )
                results.append(
                    Result(
                        "psql \\copy \\| gzip -1 \\| aws s3 cp -",
                        seconds,
                        peak,
                        *object_digest(client, bucket, "pipeline.csv.gz"),
                    )
                )

        if not args.skip_rowloop:
            seconds, peak = run_rowloop(dsn, endpoint, bucket, "rowloop.csv")
            results.append(
                Result(
                    "row loop (asyncpg + csv.writer + boto3)",
                    seconds,
                    peak,
                    *object_digest(client, bucket, "rowloop.csv"),
                )
            )

    print(
        f"\nCSV export of {args.rows:,} rows ({results[0].size / 1e6:.0f} MB), "
        f"{os.cpu_count()} cores, rclone serve s3 on loopback:\n"
    )
    print(table(results, args.rows))
    print(f"\nexportd's RSS before the job (idle daemon, API and pools): {idle / 1e6:.0f} MB.")
    same = results[0].sha256 == results[1].sha256
    print(
        f"\nexportd's object {'equals' if same else 'DIFFERS from'} the pipeline's byte for byte."
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
