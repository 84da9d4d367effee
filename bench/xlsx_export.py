"""xlsx exports: exportd's (Postgres formats each sheet row through COPY, streamed into
the zip) against xlsxwriter in constant-memory mode fed by asyncpg records, side by
side with exportd's CSV of the same rows.

The table, database, S3 server and measures are bench/csv_export.py's: wall time from
the job's INSERT (or the process's start) to the object complete in S3, peak RSS of
the contender's process tree sampled every 10 ms, CPU seconds of the contender, of
Postgres and of the S3 server. Each contender runs ``--repeat`` times in turns; the
table gives each one's median run.

    make bench                                     # 2,000,000 rows
    .venv/bin/python bench/xlsx_export.py --rows 500000 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openpyxl  # noqa: E402

from bench.common import add_admin_url, postmaster, rclone, rclone_process, s3_client  # noqa: E402
from bench.csv_export import (  # noqa: E402
    Bench,
    Contender,
    Run,
    comparison_table,
    definitions,
    prepare_database,
    query,
)
from tests.support.fixtures_s3 import ACCESS_KEY, SECRET_KEY  # noqa: E402

CSV = "exportd csv"
XLSX = "exportd xlsx (Postgres formats the rows)"
WRITER = "xlsxwriter constant_memory (asyncpg records)"
# The aims of the issue: time against exportd's CSV, and peak RSS.
AIM_RATIO = 3.0
AIM_RSS_MB = 200


def writer_run(bench: Bench, rows: int) -> Run:
    env = os.environ | {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "BENCH_S3_ENDPOINT": bench.endpoint,
    }
    key = f"xlsxwriter-{uuid.uuid4().hex[:8]}.xlsx"
    argv = [sys.executable, str(ROOT / "bench" / "xlsx_writer.py"), bench.dsn, query(rows)]
    return bench.process("xlsxwriter", [*argv, bench.bucket, key], env, key)


def check_workbook(bench: Bench, key: str, rows: int) -> None:
    """The last exportd workbook opens and holds every row (read in streaming mode)."""
    body = bench.client.get_object(Bucket=bench.bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
    book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    found = sum(sum(1 for _ in sheet.iter_rows(values_only=True)) - 1 for sheet in book.worksheets)
    book.close()
    if found != rows:
        raise RuntimeError(f"the xlsx holds {found} rows, not {rows}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-writer", action="store_true", help="leave xlsxwriter out")
    add_admin_url(parser)
    args = parser.parse_args()

    dsn = asyncio.run(prepare_database(args.admin_url, "exportd_bench", args.rows))
    server = asyncio.run(postmaster(dsn))
    with tempfile.TemporaryDirectory() as tmp, rclone(Path(tmp)) as endpoint:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        client = s3_client(endpoint)
        client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        bench = Bench(dsn, endpoint, bucket, Path(tmp), "", client, server, rclone_process())
        names = [CSV, XLSX] + ([] if args.skip_writer else [WRITER])
        by_name = {name: Contender(name) for name in names}
        kind = f"rows_{args.rows}"
        with bench.daemon(definitions([args.rows])) as daemon:
            for round_ in range(args.repeat):
                print(f"round {round_ + 1} of {args.repeat}...", file=sys.stderr)
                by_name[CSV].runs.append(bench.exportd(daemon, kind, "csv"))
                by_name[XLSX].runs.append(bench.exportd(daemon, kind, "xlsx"))
                if not args.skip_writer:
                    by_name[WRITER].runs.append(writer_run(bench, args.rows))
        keys = [
            o["Key"]
            for o in client.list_objects_v2(Bucket=bucket)["Contents"]  # type: ignore[attr-defined]
            if o["Key"].endswith(".xlsx") and not o["Key"].startswith("xlsxwriter")
        ]
        check_workbook(bench, keys[-1], args.rows)

    contenders = list(by_name.values())
    print(
        f"\nExports of {args.rows:,} rows, median of {args.repeat} run(s) each, "
        f"{os.cpu_count()} cores, rclone serve s3 on loopback:\n"
    )
    print(comparison_table(contenders, args.rows))
    csv_time = by_name[CSV].median.seconds
    print("\n| aim | measured | aim | met |\n|---|---:|---:|---|")
    for name in names[1:]:
        run = by_name[name].median
        ratio = run.seconds / csv_time
        print(
            f"| {name}: time / exportd csv time | {ratio:.2f} | ≤ {AIM_RATIO:.2f} | "
            f"{'yes' if ratio <= AIM_RATIO else 'no'} |"
        )
        rss = run.peak_rss / 1e6
        print(
            f"| {name}: peak RSS, MB | {rss:.0f} | < {AIM_RSS_MB} | "
            f"{'yes' if rss < AIM_RSS_MB else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
