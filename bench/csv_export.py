"""Exports to S3: exportd against the alternatives, side by side, in one run.

Contenders, on the same table, database and S3 server (``rclone serve s3``):

- exportd: an ``exportd run`` process exporting one job per format (CSV is
  Postgres's COPY streamed into a multipart upload), and CSV once more with the
  ``excel`` profile (a BOM, CRLF line ends, the formula guard) as its kind's default;
- pipeline: ``psql -c "\\copy (query) to stdout csv header" | aws s3 cp - s3://...``,
  and for ``csv.gz`` the same with ``| gzip -1 |`` in the middle;
- row loop: rows fetched in Python, written with csv.writer, file uploaded;
- DuckDB (``duckdb_copy.py``): the database ATTACHed with the postgres extension
  (binary COPY), ``COPY (query) TO 's3://...'`` through httpfs, as csv, csv.gz,
  jsonl and parquet;
- Postgres alone: ``psql \\copy`` of the rows to /dev/null, the floor of a format;
- with ``--baseline TREE``: exportd's csv and jsonl from another source tree (the
  code before a change), in the same rounds, so a change is measured side by side.

Formats exportd does not offer (not in ``SUPPORTED_FORMATS``; parquet also
needs pyarrow) are skipped with a note, and so is DuckDB without its packages.

Wall time runs from the moment a contender is asked to export until its
object is complete in S3. Peak RSS is the largest sum of the resident sizes
of the contender's processes, sampled every 10 ms (exportd: the daemon, whose
baseline includes its HTTP API and connection pools). CPU seconds are given
for the contender's own processes, for every Postgres process and for the S3
server, so a ratio can be read against what bounds it on the machine.

Each contender but the row loop runs ``--repeat`` times, the contenders taking
turns, and the table gives each one's median run. A second table gives
exportd's peak RSS exporting the first 1, 2 and 4 million rows (``--rss-rows``).

Last comes the table of aims: each format's exportd time against its
contender's, the ratio, the aim, whether it is met, and both peak RSS.

    make bench                                      # 2,000,000 rows, every comparison
    .venv/bin/python bench/csv_export.py --rows 1000000 --repeat 1 --skip-rowloop

needs psql on PATH and the AWS CLI at --aws (``make bench`` installs it in
its own environment, since it pins botocore apart from aiobotocore).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import duckdb_copy  # noqa: E402
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
from exportd.definitions.offered_formats import SUPPORTED_FORMATS  # noqa: E402
from exportd.queue.migrations import migrate  # noqa: E402
from tests.support.fixtures_s3 import ACCESS_KEY, SECRET_KEY  # noqa: E402

COLUMNS = "id, owner, created_at, amount, status, note"

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


def query(rows: int) -> str:
    """The first ``rows`` rows of the table, in order: the query every contender runs."""
    return f"SELECT {COLUMNS} FROM bench.rows WHERE id <= {rows} ORDER BY id"


def definitions(sizes: list[int], excel: int | None = None) -> str:
    """One kind per size, ``rows_<n>``, exporting ``query(n)``; with ``excel``, also
    ``rows_<excel>_excel``, the same rows with the ``excel`` CSV profile (UTF-8 BOM, CRLF,
    formula guard) as the kind's default."""
    kinds = [
        f'[kinds.rows_{n}]\ndescription = "The first {n} rows"\nquery = "{query(n)} -- :owner"\n'
        for n in sizes
    ]
    if excel is not None:
        kinds.append(
            f'[kinds.rows_{excel}_excel]\nquery = "{query(excel)} -- :owner"\n'
            f'[kinds.rows_{excel}_excel.options]\ncsv = {{ profile = "excel" }}\n'
        )
    return "\n".join(kinds)


@dataclass
class Run:
    seconds: float
    peak_rss: int
    cpu: float  # the contender's own processes
    postgres_cpu: float
    s3_cpu: float
    size: int = 0
    sha256: str = ""


@dataclass
class Contender:
    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> Run:
        """The run of median wall time (a real run, so its columns agree)."""
        ordered = sorted(self.runs, key=lambda r: r.seconds)
        return ordered[(len(ordered) - 1) // 2]


class Sampler:
    """Peak summed RSS of a process tree, and CPU time of every Postgres process.

    Postgres backends come and go (psql's ends with its COPY), so their CPU
    time is read every 10 ms while they live rather than before and after.
    """

    def __init__(self, pid: int | None, postmaster: psutil.Process) -> None:
        self.root = psutil.Process(pid) if pid is not None else None
        self.postmaster = postmaster
        self.peak = 0
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    def _sample(self) -> None:
        if self.root is not None:
            total = 0
            with contextlib.suppress(psutil.Error):
                for proc in [self.root, *self.root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
            self.peak = max(self.peak, total)
        with contextlib.suppress(psutil.Error):
            for proc in [self.postmaster, *self.postmaster.children()]:
                with contextlib.suppress(psutil.Error):
                    cpu = self._cpu(proc)
                    self._first.setdefault(proc.pid, cpu)
                    self._last[proc.pid] = cpu

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(0.01)

    @property
    def postgres_cpu(self) -> float:
        return sum(self._last[pid] - self._first[pid] for pid in self._last)

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass
class Bench:
    dsn: str
    endpoint: str
    bucket: str
    workdir: Path
    aws: str
    client: object
    postmaster: psutil.Process
    s3_server: psutil.Process

    def _s3_cpu(self) -> float:
        return Sampler._cpu(self.s3_server)

    def digest(self, run: Run, key: str) -> Run:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]  # type: ignore[attr-defined]
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
            run.size += len(chunk)
        run.sha256 = digest.hexdigest()
        return run

    @contextlib.contextmanager
    def daemon(self, kinds: str, tree: Path | None = None) -> Iterator[psutil.Process]:
        """An ``exportd run`` of this source tree, or of ``tree`` (a baseline)."""
        (self.workdir / "kinds.toml").write_text(kinds)
        env = daemon_env(
            self.dsn,
            self.endpoint,
            self.bucket,
            self.workdir / "kinds.toml",
            poll_interval="0.05",
            log_level="warning",
        )
        if tree is not None:
            env["PYTHONPATH"] = str(tree)
        with exportd_run(env, self.workdir) as proc:
            yield psutil.Process(proc.pid)

    def exportd(self, daemon: psutil.Process, kind: str, fmt: str) -> Run:
        """One job through a running daemon, from INSERT to the row saying completed."""

        async def one_job() -> tuple[float, str]:
            conn = await asyncpg.connect(self.dsn)
            try:
                started = time.perf_counter()
                job_id = await conn.fetchval(
                    "SELECT exportd.enqueue('bench', $1, '{}'::jsonb, $2)", kind, fmt
                )
                while True:
                    row = await conn.fetchrow(
                        "SELECT state, object_key, error FROM exportd.jobs WHERE id = $1", job_id
                    )
                    if row["state"] in ("completed", "failed"):
                        break
                    await asyncio.sleep(0.005)
                elapsed = time.perf_counter() - started
            finally:
                await conn.close()
            if row["state"] != "completed":
                raise RuntimeError(f"exportd failed: {row['error']}")
            return elapsed, str(row["object_key"])

        cpu, s3 = Sampler._cpu(daemon), self._s3_cpu()
        with Sampler(daemon.pid, self.postmaster) as sampler:
            elapsed, key = asyncio.run(one_job())
        run = Run(
            elapsed,
            sampler.peak,
            Sampler._cpu(daemon) - cpu,
            sampler.postgres_cpu,
            self._s3_cpu() - s3,
        )
        return self.digest(run, key)

    def process(self, name: str, argv: list[str], env: dict[str, str], key: str | None) -> Run:
        """A contender run as a process tree, to completion."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        s3 = self._s3_cpu()
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
        with Sampler(proc.pid, self.postmaster) as sampler:
            code = proc.wait()
        elapsed = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"{name} exited with {code}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
        run = Run(elapsed, sampler.peak, cpu, sampler.postgres_cpu, self._s3_cpu() - s3)
        return self.digest(run, key) if key is not None else run

    def pipeline(self, rows: int, *, gzip: bool = False) -> Run:
        env = os.environ | {
            "PGTZ": "UTC",
            "PGOPTIONS": "-c DateStyle=ISO,YMD -c IntervalStyle=iso_8601",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }
        key = f"pipeline-{uuid.uuid4().hex[:8]}.csv" + (".gz" if gzip else "")
        copy = f"\\copy ({query(rows)}) to stdout csv header"
        script = (
            f'psql "{self.dsn}" -X -q -v ON_ERROR_STOP=1 -c "{copy}"'
            + (" | gzip -1" if gzip else "")
            + f" | {self.aws} s3 cp - s3://{self.bucket}/{key} --endpoint-url {self.endpoint}"
        )
        return self.process("pipeline", ["bash", "-o", "pipefail", "-c", script], env, key)

    def postgres_alone(self, rows: int, *, json: bool = False) -> Run:
        """What Postgres takes to produce the rows as CSV (or as exportd's JSON
        Lines: row_to_json per row) with nothing after it: the floor of a format."""
        if json:
            copy = f"\\copy (SELECT row_to_json(t)::text FROM ({query(rows)}) AS t) to /dev/null"
        else:
            copy = f"\\copy ({query(rows)}) to /dev/null csv header"
        argv = ["psql", self.dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", copy]
        return self.process("psql", argv, dict(os.environ), None)

    def duckdb(self, rows: int, fmt: str, extensions: Path) -> Run:
        """DuckDB exporting the rows as ``fmt`` (``duckdb_copy.py``, its own process);
        wall and own CPU as it reports them, from ATTACH to the object complete."""
        key = f"duckdb-{uuid.uuid4().hex[:8]}.{fmt}"
        sql = query(rows).replace("FROM bench.rows", "FROM pg.bench.rows")
        script = str(ROOT / "bench" / "duckdb_copy.py")
        url = f"s3://{self.bucket}/{key}"
        argv = [sys.executable, script, str(extensions), self.dsn, self.endpoint, fmt, sql, url]
        s3 = self._s3_cpu()
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        with Sampler(proc.pid, self.postmaster) as sampler:
            out, _ = proc.communicate(f"{ACCESS_KEY} {SECRET_KEY}".encode())
        if proc.returncode != 0:
            raise RuntimeError(f"duckdb exited with {proc.returncode}")
        told = json.loads(out.decode().strip().splitlines()[-1])
        run = Run(
            told["seconds"], sampler.peak, told["cpu"], sampler.postgres_cpu, self._s3_cpu() - s3
        )
        return self.digest(run, key)

    def rowloop(self, rows: int) -> Run:
        env = os.environ | {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "BENCH_S3_ENDPOINT": self.endpoint,
        }
        key = f"rowloop-{uuid.uuid4().hex[:8]}.csv"
        script = str(ROOT / "bench" / "rowloop.py")
        argv = [sys.executable, script, self.dsn, query(rows), self.bucket, key]
        return self.process("row loop", argv, env, key)


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
        # CASCADE: the webhook deliveries (and any other table) that reference jobs.
        await conn.execute("TRUNCATE exportd.jobs CASCADE")
    finally:
        await conn.close()
    return dsn


def comparison_table(contenders: list[Contender], rows: int) -> str:
    base = contenders[0].median
    lines = [
        "| contender | wall s | rows/s | MB/s | peak RSS MB | CPU s: own / Postgres / S3 "
        "| time vs exportd csv |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in contenders:
        r = c.median
        lines.append(
            f"| {c.name} | {r.seconds:.2f} | {rows / r.seconds:,.0f} | "
            f"{f'{r.size / r.seconds / 1e6:.0f}' if r.size else '-'} | {r.peak_rss / 1e6:.0f} | "
            f"{r.cpu:.2f} / {r.postgres_cpu:.2f} / {r.s3_cpu:.2f} | "
            f"{r.seconds / base.seconds:.2f}x |"
        )
    return "\n".join(lines)


@dataclass
class Aim:
    """One comparison of the final table: exportd's ``fmt`` against ``contender``."""

    fmt: str
    exportd: Run
    contender_name: str
    contender: Run
    aim: str
    met: bool | None  # None: no aim, shown for reference

    @property
    def ratio(self) -> float:
        return self.exportd.seconds / self.contender.seconds


EXPORTD = "exportd csv"
EXCEL = "exportd csv, excel profile (BOM, CRLF, formula guard)"
PIPELINE = "psql \\copy \\| aws s3 cp -"
GZIP_PIPELINE = "psql \\copy \\| gzip -1 \\| aws s3 cp -"
ROWLOOP = "row loop (asyncpg + csv.writer + boto3)"
ALONE_CSV = "Postgres alone: COPY csv to /dev/null"
ALONE_JSON = "Postgres alone: COPY row_to_json to /dev/null"
BASELINE = "exportd {} (baseline tree)"
DUCKDB = "DuckDB {} (postgres + httpfs extensions)"
# Peak RSS an exportd parquet export must stay under, bytes.
PARQUET_RSS = 250_000_000


def aims(by_name: dict[str, Contender]) -> list[Aim]:
    """The aims of each format, for the contenders measured in this run: (format,
    exportd's contender name, the other's, the aim as printed, the test of the time
    ratio and of both runs)."""
    checks: list[tuple[str, str, str, str, Callable[[float, Run, Run], bool | None]]] = [
        ("csv", EXPORTD, ALONE_CSV, "≤ 1.40", lambda v, a, b: v <= 1.4),
        ("csv", EXPORTD, PIPELINE, "≤ 0.85", lambda v, a, b: v <= 0.85),
        ("csv", EXPORTD, DUCKDB.format("csv"), "(none)", lambda v, a, b: None),
        ("csv", ROWLOOP, EXPORTD, "≥ 4.00 (row loop / exportd)", lambda v, a, b: v >= 4),
        ("csv.gz", "exportd csv.gz", GZIP_PIPELINE, "≤ 0.80", lambda v, a, b: v <= 0.8),
        ("csv.gz", "exportd csv.gz", DUCKDB.format("csv.gz"), "(none)", lambda v, a, b: None),
        ("jsonl", "exportd jsonl", DUCKDB.format("jsonl"), "≤ 1.00", lambda v, a, b: v <= 1),
        ("jsonl", "exportd jsonl", ALONE_JSON, "(the floor)", lambda v, a, b: None),
        (
            "parquet",
            "exportd parquet",
            DUCKDB.format("parquet"),
            "≤ 1.00, RSS < 250 MB",
            lambda v, a, b: v <= 1 and a.peak_rss < PARQUET_RSS,
        ),
        (
            "csv.zst",
            "exportd csv.zst",
            "exportd csv.gz",
            "≤ 1.00 and smaller",
            lambda v, a, b: v <= 1 and a.size < b.size,
        ),
        ("zip", "exportd zip", "exportd csv.gz", "≤ 1.15", lambda v, a, b: v <= 1.15),
    ]
    out: list[Aim] = []
    for fmt, a, b, aim, ok in checks:
        if a in by_name and b in by_name and by_name[a].runs and by_name[b].runs:
            ra, rb = by_name[a].median, by_name[b].median
            out.append(Aim(fmt, ra, b, rb, aim, ok(ra.seconds / rb.seconds, ra, rb)))
    return out


def rss_aims(rss: dict[int, Run]) -> list[tuple[str, float, str, bool]]:
    """exportd's peak RSS by export size: (what, measured, aim, met)."""
    if not rss:
        return []
    peak = max(r.peak_rss for r in rss.values()) / 1e6
    smallest, largest = rss[min(rss)], rss[max(rss)]
    growth = largest.peak_rss / smallest.peak_rss
    return [
        ("exportd peak RSS, MB (every size)", peak, "< 150", peak < 150),
        (
            f"peak RSS at {max(rss):,} rows / at {min(rss):,} rows",
            growth,
            "≤ 1.15",
            growth <= 1.15,
        ),
    ]


def offered(formats: list[str]) -> list[str]:
    """Those of ``formats`` this exportd can write here; a note on stderr for each other."""
    out = []
    for fmt in formats:
        if fmt not in SUPPORTED_FORMATS:
            print(f"note: exportd does not offer {fmt!r} here: skipped", file=sys.stderr)
        elif fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
            print("note: pyarrow is not installed: exportd parquet skipped", file=sys.stderr)
        else:
            out.append(fmt)
    return out


def aims_table(found: list[Aim]) -> str:
    lines = [
        "| format | exportd s | contender | contender s | ratio | aim | met | "
        "RSS MB: exportd / contender |",
        "|---|---:|---|---:|---:|---|---|---:|",
    ]
    for a in found:
        lines.append(
            f"| {a.fmt} | {a.exportd.seconds:.2f} | {a.contender_name} | "
            f"{a.contender.seconds:.2f} | {a.ratio:.2f} | {a.aim} | "
            f"{'-' if a.met is None else 'yes' if a.met else 'NO'} | "
            f"{a.exportd.peak_rss / 1e6:.0f} / {a.contender.peak_rss / 1e6:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    add_admin_url(parser)
    parser.add_argument(
        "--aws", default=shutil.which("aws") or str(ROOT / ".venv-aws" / "bin" / "aws")
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender")
    parser.add_argument(
        "--database", default="exportd_bench", help="the benchmark's database (kept between runs)"
    )
    parser.add_argument("--skip-rowloop", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true", help="no psql | aws s3 cp")
    parser.add_argument(
        "--formats",
        default="csv.gz,jsonl,zip,parquet,csv.zst,jsonl.zst",
        help="exportd formats to time besides csv (csv.gz also runs the gzip pipeline); "
        "those exportd does not offer are skipped with a note",
    )
    parser.add_argument(
        "--duckdb",
        default="csv,csv.gz,jsonl,parquet",
        help="formats DuckDB exports as a contender ('' to skip)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another exportd source tree whose csv and jsonl are timed in the same rounds",
    )
    parser.add_argument(
        "--rss-rows",
        default="1000000,2000000,4000000",
        help="sizes at which to measure exportd's peak RSS ('' to skip)",
    )
    args = parser.parse_args()
    formats = offered([f for f in args.formats.split(",") if f and f != "csv"])
    duck = [f for f in args.duckdb.split(",") if f]
    if duck and (why := duckdb_copy.available()) is not None:
        print(f"note: DuckDB skipped: {why}", file=sys.stderr)
        duck = []
    rss_sizes = [int(n) for n in args.rss_rows.split(",") if n]
    table_rows = max([args.rows, *rss_sizes])

    dsn = asyncio.run(prepare_database(args.admin_url, args.database, table_rows))
    server = asyncio.run(postmaster(dsn))
    with tempfile.TemporaryDirectory() as tmp, rclone(Path(tmp)) as endpoint:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        client = s3_client(endpoint)
        client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        bench = Bench(
            dsn,
            endpoint,
            bucket,
            Path(tmp),
            args.aws,
            client,
            server,
            rclone_process(),
        )
        extensions = duckdb_copy.stage_extensions(Path(tmp) / "extensions") if duck else None
        names = [EXPORTD, EXCEL] + ([] if args.skip_pipeline else [PIPELINE])
        for fmt in formats:
            names.append(f"exportd {fmt}")
            if fmt == "csv.gz" and not args.skip_pipeline:
                names.append(GZIP_PIPELINE)
        names += [DUCKDB.format(fmt) for fmt in duck]
        baseline = ["csv", *(["jsonl"] if "jsonl" in formats else [])] if args.baseline else []
        names += [BASELINE.format(fmt) for fmt in baseline]
        names += [ALONE_CSV] + ([ALONE_JSON] if "jsonl" in formats else [])
        by_name = {name: Contender(name) for name in names}
        kind = f"rows_{args.rows}"
        kinds = definitions(sorted({args.rows, *rss_sizes}), args.rows)
        idle = settled = 0
        for round_ in range(args.repeat):
            print(f"round {round_ + 1} of {args.repeat}...", file=sys.stderr)
            with bench.daemon(kinds) as daemon:
                idle = idle or daemon.memory_info().rss
                by_name[EXPORTD].runs.append(bench.exportd(daemon, kind, "csv"))
                by_name[EXCEL].runs.append(bench.exportd(daemon, f"{kind}_excel", "csv"))
                for fmt in formats:
                    by_name[f"exportd {fmt}"].runs.append(bench.exportd(daemon, kind, fmt))
                settled = daemon.memory_info().rss
            if args.baseline:
                with bench.daemon(kinds, args.baseline) as daemon:
                    for fmt in baseline:
                        run = bench.exportd(daemon, kind, fmt)
                        by_name[BASELINE.format(fmt)].runs.append(run)
            if not args.skip_pipeline:
                by_name[PIPELINE].runs.append(bench.pipeline(args.rows))
                if GZIP_PIPELINE in by_name:
                    by_name[GZIP_PIPELINE].runs.append(bench.pipeline(args.rows, gzip=True))
            for fmt in duck:
                assert extensions is not None
                by_name[DUCKDB.format(fmt)].runs.append(bench.duckdb(args.rows, fmt, extensions))
            by_name[ALONE_CSV].runs.append(bench.postgres_alone(args.rows))
            if ALONE_JSON in by_name:
                by_name[ALONE_JSON].runs.append(bench.postgres_alone(args.rows, json=True))
        if not args.skip_rowloop:
            by_name[ROWLOOP] = Contender(ROWLOOP, [bench.rowloop(args.rows)])

        # Memory: a fresh daemon per size, so each peak is that export's own.
        rss: dict[int, Run] = {}
        idle_by_size: dict[int, int] = {}
        for n in rss_sizes:
            with bench.daemon(definitions([n])) as daemon:
                idle_by_size[n] = daemon.memory_info().rss
                rss[n] = bench.exportd(daemon, f"rows_{n}", "csv")

    contenders = list(by_name.values())
    print(
        f"\nExports of {args.rows:,} rows ({contenders[0].median.size / 1e6:.0f} MB of CSV), "
        f"median of {args.repeat} run(s) each (row loop: one), {os.cpu_count()} cores, "
        "rclone serve s3 on loopback:\n"
    )
    print(comparison_table(contenders, args.rows))
    exports = sum(len(c.runs) for c in contenders if c.name.startswith("exportd"))
    print(
        f"\nexportd's RSS before its first job (idle daemon, API and pools): {idle / 1e6:.0f} MB;"
        f" after the exports of its last round: {settled / 1e6:.0f} MB ({exports} in all)."
    )
    if rss:
        print("\nexportd's peak RSS by export size (csv, a fresh daemon each):\n")
        print("| rows | MB of CSV | wall s | idle RSS MB | peak RSS MB |")
        print("|---:|---:|---:|---:|---:|")
        for n, r in rss.items():
            print(
                f"| {n:,} | {r.size / 1e6:.0f} | {r.seconds:.2f} | "
                f"{idle_by_size[n] / 1e6:.0f} | {r.peak_rss / 1e6:.0f} |"
            )
        print("\n| aim | measured | aim | met |\n|---|---:|---:|---|")
        for what, value, aim, met in rss_aims(rss):
            print(f"| {what} | {value:.2f} | {aim} | {'yes' if met else 'NO'} |")
    print("\nAims, median runs (ratio: exportd's time over the contender's):\n")
    print(aims_table(aims(by_name)))
    if args.skip_pipeline:
        return 0
    same = {r.sha256 for c in (by_name[EXPORTD], by_name[PIPELINE]) for r in c.runs}
    print(
        "\nexportd's CSV objects "
        + (
            "equal the pipeline's byte for byte."
            if len(same) == 1
            else "DIFFER from the pipeline's."
        )
    )
    return 0 if len(same) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
