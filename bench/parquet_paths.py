"""How rows reach a parquet file: the candidate paths from Postgres, side by side.

Each path reads the same table and writes a zstd parquet file to a sink that only
counts its bytes (no S3: the upload is the same for every path), in a process of its
own so that its peak RSS is its own:

- copy_csv: exportd's path. ``COPY`` of the ``parquet_copy`` statement (CSV, each
  column in the form Arrow parses exactly), blocks of whole rows parsed by Arrow's
  CSV reader in a thread and written as row groups (``exportd.export.parquet``);
- records: asyncpg's binary protocol, rows fetched through a cursor in batches of
  50,000 records, turned column-wise into Arrow arrays (``pa.array`` per column);
- imports: nothing read; the peak RSS of Python with exportd's parquet modules loaded;
- duckdb_csv: DuckDB's parquet writer on the same rows: ``COPY`` CSV to a local
  file, then DuckDB's ``COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)``,
  both counted (DuckDB reads Postgres natively only through its postgres extension,
  which is downloaded at run time).

    .venv/bin/python bench/parquet_paths.py --rows 2000000 --repeat 3

Seconds, rows per second and peak RSS (the process's high-water mark) are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import add_admin_url, create_database  # noqa: E402

DATABASE = "exportd_bench_parquet"
QUERY = "SELECT id, owner, created_at, amount, status, note FROM bench.rows ORDER BY id"
TABLE = """
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.rows;
CREATE TABLE bench.rows (
    id bigint PRIMARY KEY, owner text NOT NULL, created_at timestamptz NOT NULL,
    amount float8 NOT NULL, status text NOT NULL, note text
);
INSERT INTO bench.rows
SELECT g, 'owner_' || (g % 1000),
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
       round((g % 100000) * 1.37, 2),
       (ARRAY['new', 'paid', 'shipped', 'refunded'])[1 + g % 4],
       CASE WHEN g % 10 = 0 THEN NULL ELSE 'note, "quoted" ' || md5(g::text) END
FROM generate_series(1, $1::int) AS g;
ANALYZE bench.rows;
"""
PATHS = ("imports", "copy_csv", "records", "duckdb_csv")
# What each path imports before its clock starts (its baseline RSS: the "imports" row).
NEEDS = {
    "imports": ("pyarrow.parquet", "pyarrow.csv", "exportd.export.parquet.source"),
    "copy_csv": ("pyarrow.parquet", "pyarrow.csv", "exportd.export.parquet.source"),
    "records": ("pyarrow.parquet",),
    "duckdb_csv": ("duckdb",),
}


class Counted:
    def __init__(self) -> None:
        self.bytes = 0

    async def write(self, data: bytes) -> None:
        self.bytes += len(data)


async def nothing(dsn: str) -> tuple[int, int]:
    """The baseline: exportd's parquet modules imported, nothing read."""
    return 0, 0


async def copy_csv(dsn: str) -> tuple[int, int]:
    from exportd.export.parquet.source import copy_parquet
    from exportd.export.parquet.writer import ParquetRows
    from exportd.export.sources import start_session

    conn = await asyncpg.connect(dsn)
    out = Counted()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await start_session(conn, 600, "UTC")
        target = ParquetRows(out, "UTC", "zstd", "bench")
        rows = await copy_parquet(conn, QUERY, target, target, lambda n: None, {}, "bench")
    await conn.close()
    return rows, out.bytes


async def records(dsn: str) -> tuple[int, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("owner", pa.string()),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("amount", pa.float64()),
            ("status", pa.string()),
            ("note", pa.string()),
        ]
    )
    sink = pa.BufferOutputStream()
    rows = 0
    conn = await asyncpg.connect(dsn)
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = await conn.cursor(QUERY)
            while batch := await cursor.fetch(50_000):
                columns = list(zip(*batch, strict=True))
                arrays = [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                rows += len(batch)
                # What a stream holds: drop the written bytes (counted at the end).
    await conn.close()
    return rows, len(sink.getvalue())


async def duckdb_csv(dsn: str) -> tuple[int, int]:
    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        csv_path, out_path = Path(tmp) / "rows.csv", Path(tmp) / "rows.parquet"
        conn = await asyncpg.connect(dsn)
        await conn.copy_from_query(QUERY, output=str(csv_path), format="csv")
        await conn.close()
        db = duckdb.connect()
        db.execute(
            f"COPY (SELECT * FROM read_csv('{csv_path}', header = false, columns = "
            "{'id': 'BIGINT', 'owner': 'VARCHAR', 'created_at': 'TIMESTAMPTZ', "
            "'amount': 'DOUBLE', 'status': 'VARCHAR', 'note': 'VARCHAR'})) "
            f"TO '{out_path}' (FORMAT parquet, COMPRESSION zstd)"
        )
        rows = db.execute(f"SELECT count(*) FROM read_parquet('{out_path}')").fetchall()[0][0]
        return int(rows), out_path.stat().st_size


def one(path: str, dsn: str) -> None:
    """Run ``path`` once in this process; print its figures as JSON."""
    runner = {
        "imports": nothing,
        "copy_csv": copy_csv,
        "records": records,
        "duckdb_csv": duckdb_csv,
    }[path]
    # Imports are not the path's time: a daemon has them loaded already.
    for module in NEEDS[path]:
        importlib.import_module(module)
    start = time.perf_counter()
    rows, size = asyncio.run(runner(dsn))
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"rows": rows, "bytes": size, "seconds": seconds, "rss": max(rss, children)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_admin_url(parser)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one, args.dsn)
        return

    async def prepare() -> str:
        dsn = await create_database(args.admin_url, DATABASE, fresh=True)
        conn = await asyncpg.connect(dsn)
        await conn.execute(TABLE.replace("$1::int", str(int(args.rows))))
        await conn.close()
        return dsn

    dsn = asyncio.run(prepare())
    results: dict[str, list[dict[str, Any]]] = {p: [] for p in args.paths.split(",")}
    for _ in range(args.repeat):
        for path in results:  # the paths take turns
            done = subprocess.run(
                [sys.executable, __file__, "--one", path, "--dsn", dsn],
                check=True,
                capture_output=True,
                text=True,
            )
            results[path].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{args.rows:,} rows, median of {args.repeat}")
    print(f"{'path':<12} {'seconds':>8} {'rows/s':>12} {'MB file':>8} {'peak RSS MB':>12}")
    for path, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["rss"] for r in runs) / 2**20
        size = runs[0]["bytes"] / 2**20
        rate = args.rows / seconds if runs[0]["rows"] else 0
        print(f"{path:<12} {seconds:>8.2f} {rate:>12,.0f} {size:>8.1f} {rss:>12.0f}")


if __name__ == "__main__":
    main()
