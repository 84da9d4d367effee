"""Stored objects bundled into a zip: exportd's files dataset against the shell pipeline,
side by side, in one run.

The objects: ``--total-mb`` of mixed sizes in a source bucket of one ``rclone serve
s3``: half of it in many small objects (4 KiB to 1.5 MiB: photos and PDFs of random,
incompressible bytes, CSV and text receipts), half in four large ones (a video and a
backup of random bytes, a ledger and a log of text), so about half the bytes shrink.

Contenders, on the same objects, database and S3 server:

- exportd: an ``exportd run`` process (a fresh one per size) running a kind whose one
  dataset has ``output = "files"``: its query names every object, and each is streamed
  from the source bucket into a member of the zip, uploaded in parts as it is written;
- pipeline: ``aws s3 sync s3://source/prefix dir && zip -r out.zip dir && aws s3 cp
  out.zip s3://...``, with ``zip``'s default level (6), and once more with ``zip -1``
  (the fast level exportd deflates at).

Wall time runs from the moment a contender is asked to bundle until its zip is complete
in S3. Peak RSS is the largest sum of the resident sizes of the contender's processes,
sampled every 10 ms (exportd: the daemon, whose baseline includes its HTTP API and
connection pools). The comparison runs at ``--total-mb`` and at ``--small-mb``, so the
daemon's peak RSS can be read at both: it must stay flat. The pipeline's temporary
folder is on the same disk as the S3 server's files; neither side's page cache is
dropped between runs, and exportd runs first at each size.

    make bench                                      # 1,000 MB and 250 MB
    .venv/bin/python bench/files_bundle.py --aws .venv-aws/bin/aws --total-mb 200 --small-mb 50

needs ``zip`` on PATH and the AWS CLI at --aws (``make bench`` installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
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
from bench.csv_export import Bench, Run  # noqa: E402
from exportd.queue.migrations import migrate  # noqa: E402
from tests.support.fixtures_s3 import ACCESS_KEY, SECRET_KEY  # noqa: E402

MB = 1_000_000
KIB = 1024
MIB = 1024 * KIB
# The small objects' sizes, in turn, with their extensions: (bytes, extension, random).
SMALL = [
    (4 * KIB, "txt", False),
    (24 * KIB, "jpg", True),
    (96 * KIB, "csv", False),
    (400 * KIB, "pdf", True),
    (1536 * KIB, "txt", False),
    (200 * KIB, "jpg", True),
]
# The large ones, each this share of the total: (name, share, random).
LARGE = [("video.mp4", 0.125, True), ("backup.bin", 0.125, True)]
LARGE += [("ledger.csv", 0.125, False), ("server.log", 0.125, False)]

EXPORTD = "exportd (files dataset)"
PIPELINE = "aws s3 sync && zip -r && aws s3 cp"
PIPELINE_FAST = "aws s3 sync && zip -1 -r && aws s3 cp"

TABLE = """
CREATE SCHEMA IF NOT EXISTS bench;
DROP TABLE IF EXISTS bench.files;
CREATE TABLE bench.files (
    set_mb integer NOT NULL, n integer NOT NULL, key text NOT NULL, path text NOT NULL,
    size bigint NOT NULL, PRIMARY KEY (set_mb, n)
);
"""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    random: bool


def layout(total: int, prefix: str) -> list[StoredObject]:
    """Objects of ``total`` bytes in all (to within a small object) under ``prefix/``:
    half in ``LARGE``, the rest in ``SMALL``'s sizes in turn."""
    objects = [
        StoredObject(f"{prefix}/large/{name}", int(total * share), random)
        for name, share, random in LARGE
    ]
    left = total - sum(o.size for o in objects)
    n = 0
    while left > 0:
        size, extension, random = SMALL[n % len(SMALL)]
        size = min(size, left)
        folder = f"user-{n % 40:02d}"
        objects.append(StoredObject(f"{prefix}/{folder}/{n:05d}.{extension}", size, random))
        left -= size
        n += 1
    return objects


def text_block() -> bytes:
    """A MiB of receipt-like text lines: deflate takes it to about a third."""
    lines = []
    for n in range(40_000):
        lines.append(
            f"2024-{1 + n % 12:02d}-{1 + n % 28:02d},order {n * 7919 % 1_000_003},"
            f"customer_{n * 31 % 5000},{(n * 137) % 100000 / 100:.2f},"
            f"{('paid', 'refunded', 'open', 'shipped')[n % 4]},{os.urandom(4).hex()}\n"
        )
    return "".join(lines).encode()[:MIB]


def body(obj: StoredObject, text: bytes) -> bytes:
    if obj.random:
        return os.urandom(obj.size)
    whole, rest = divmod(obj.size, len(text))
    return text * whole + text[:rest]


def upload(client: object, bucket: str, objects: list[StoredObject]) -> None:
    text = text_block()
    for obj in objects:
        client.put_object(Bucket=bucket, Key=obj.key, Body=body(obj, text))  # type: ignore[attr-defined]


async def prepare_database(admin: str, sets: dict[int, list[StoredObject]]) -> str:
    dsn = await create_database(admin, "exportd_bench", fresh=False)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(TABLE)
        await conn.copy_records_to_table(
            "files",
            schema_name="bench",
            records=[
                (mb, n, o.key, o.key.split("/", 1)[1], o.size)
                for mb, objects in sets.items()
                for n, o in enumerate(objects)
            ],
        )
        await conn.execute("TRUNCATE exportd.jobs CASCADE")
    finally:
        await conn.close()
    return dsn


def definitions(sizes: list[int]) -> str:
    """Kind ``files_<mb>`` per size: one files dataset naming that set's objects."""
    return "\n".join(
        f'[kinds.files_{mb}]\nfilename = "my-files"\n'
        f"[kinds.files_{mb}.datasets.files]\n"
        'output = "files"\n'
        "query = '''SELECT key, path, size FROM bench.files "
        f"WHERE set_mb = {mb} AND :owner <> '' ORDER BY n'''\n"
        for mb in sizes
    )


@contextlib.contextmanager
def files_daemon(
    bench: Bench, source: str, sizes: list[int], count: int
) -> Iterator[psutil.Process]:
    (bench.workdir / "kinds.toml").write_text(definitions(sizes))
    env = daemon_env(
        bench.dsn,
        bench.endpoint,
        bench.bucket,
        bench.workdir / "kinds.toml",
        poll_interval="0.05",
        log_level="warning",
        files_sources=source,
        files_max_per_job=str(max(count, 10_000)),
    )
    with exportd_run(env, bench.workdir) as proc:
        yield psutil.Process(proc.pid)


def pipeline(bench: Bench, source: str, prefix: str, *, level: str) -> Run:
    env = os.environ | {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }
    key = f"pipeline-{uuid.uuid4().hex[:8]}.zip"
    scratch = Path(tempfile.mkdtemp(dir=bench.workdir))
    aws = f"{os.path.abspath(bench.aws)} --endpoint-url {bench.endpoint} --only-show-errors"
    script = (
        f"set -e; cd {scratch}; "
        f"{aws} s3 sync s3://{source}/{prefix}/ {prefix}; "
        f"zip -q -r {level} out.zip {prefix}; "
        f"{aws} s3 cp out.zip s3://{bench.bucket}/{key}"
    )
    try:
        return bench.process("pipeline", ["bash", "-c", script], env, key)
    finally:
        shutil.rmtree(scratch)


def check_bundle(bench: Bench, key: str, objects: int) -> tuple[int, int]:
    """exportd's zip holds a member per object and the manifest; its members
    (stored, deflated). Downloaded to a file after the timing, so zipfile can seek."""
    path = bench.workdir / "check.zip"
    bench.client.download_file(bench.bucket, key, str(path))  # type: ignore[attr-defined]
    try:
        with zipfile.ZipFile(path) as bundle:
            infos = [i for i in bundle.infolist() if i.filename.startswith("files/")]
    finally:
        path.unlink()
    if len(infos) != objects:
        raise RuntimeError(f"exportd's zip holds {len(infos)} files, not {objects}")
    stored = sum(1 for i in infos if i.compress_type == zipfile.ZIP_STORED)
    return stored, len(infos) - stored


def table(results: dict[int, dict[str, Run]], counts: dict[int, int]) -> str:
    lines = [
        "| MB of objects | objects | contender | wall s | MB/s | zip MB | peak RSS MB "
        "| CPU s: own / S3 | time / exportd's |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mb, runs in results.items():
        base = runs[EXPORTD].seconds
        for name, r in runs.items():
            lines.append(
                f"| {mb:,} | {counts[mb]:,} | {name} | {r.seconds:.1f} | "
                f"{mb / r.seconds:.0f} | {r.size / MB:.0f} | {r.peak_rss / MB:.0f} | "
                f"{r.cpu:.1f} / {r.s3_cpu:.1f} | {r.seconds / base:.2f}x |"
            )
    return "\n".join(lines)


def last_key(dsn: str) -> str:
    """The object of the last job completed."""

    async def fetch() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return str(
                await conn.fetchval(
                    "SELECT object_key FROM exportd.jobs WHERE state = 'completed' "
                    "ORDER BY finished_at DESC LIMIT 1"
                )
            )
        finally:
            await conn.close()

    return asyncio.run(fetch())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total-mb", type=int, default=1000, help="MB of objects to bundle")
    parser.add_argument(
        "--small-mb", type=int, default=250, help="the second size, for the RSS (0 to skip)"
    )
    parser.add_argument(
        "--aws", default=shutil.which("aws") or str(ROOT / ".venv-aws" / "bin" / "aws")
    )
    parser.add_argument("--skip-fast-zip", action="store_true", help="leave out zip -1")
    add_admin_url(parser)
    args = parser.parse_args()
    sizes = sorted({args.total_mb, args.small_mb} - {0})
    sets = {mb: layout(mb * MB, f"objects-{mb}") for mb in sizes}
    counts = {mb: len(objects) for mb, objects in sets.items()}

    dsn = asyncio.run(prepare_database(args.admin_url, sets))
    server = asyncio.run(postmaster(dsn))
    results: dict[int, dict[str, Run]] = {}
    idle: dict[int, int] = {}
    members: dict[int, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp, rclone(Path(tmp)) as endpoint:
        bucket, source = f"bench-{uuid.uuid4().hex[:12]}", f"uploads-{uuid.uuid4().hex[:8]}"
        client = s3_client(endpoint)
        for name in (bucket, source):
            client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
        for mb, objects in sets.items():
            print(f"storing {counts[mb]:,} objects, {mb:,} MB...", file=sys.stderr)
            upload(client, source, objects)
        bench = Bench(dsn, endpoint, bucket, Path(tmp), args.aws, client, server, rclone_process())
        for mb in sizes:
            print(f"bundling {mb:,} MB...", file=sys.stderr)
            runs: dict[str, Run] = {}
            # A fresh daemon per size, so each peak is that bundle's own.
            with files_daemon(bench, source, sizes, counts[mb]) as daemon:
                idle[mb] = daemon.memory_info().rss
                runs[EXPORTD] = bench.exportd(daemon, f"files_{mb}", "zip")
            members[mb] = check_bundle(bench, last_key(dsn), counts[mb])
            runs[PIPELINE] = pipeline(bench, source, f"objects-{mb}", level="-6")
            if not args.skip_fast_zip:
                runs[PIPELINE_FAST] = pipeline(bench, source, f"objects-{mb}", level="-1")
            results[mb] = runs

    print(
        f"\nBundles of stored objects into one zip in S3 ({os.cpu_count()} cores, "
        "rclone serve s3 on loopback, one run each):\n"
    )
    print(table(results, counts))
    print(
        "\nexportd's RSS before its job (idle daemon, API and pools) and at its peak, "
        "and its members stored and deflated:\n"
    )
    print(
        "| MB of objects | idle RSS MB | peak RSS MB | members stored / deflated |\n"
        "|---:|---:|---:|---:|"
    )
    for mb in sizes:
        stored, deflated = members[mb]
        print(
            f"| {mb:,} | {idle[mb] / MB:.0f} | {results[mb][EXPORTD].peak_rss / MB:.0f} "
            f"| {stored:,} / {deflated:,} |"
        )
    if len(sizes) > 1:
        small, large = results[sizes[0]][EXPORTD], results[sizes[-1]][EXPORTD]
        print(
            f"\nexportd's peak RSS at {sizes[-1]:,} MB / at {sizes[0]:,} MB: "
            f"{large.peak_rss / small.peak_rss:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
