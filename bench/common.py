"""What the benchmarks share: the S3 server and client, the database, and an
``exportd run`` process configured for them.

Every contender of a benchmark runs against the same ``rclone serve s3`` and
the same Postgres, so these helpers are the one place that says how.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import boto3
import psutil
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.fixtures_s3 import ACCESS_KEY, SECRET_KEY, find_binary, free_port, run_server  # noqa: E402

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# How long a daemon may take to answer /healthz after it is started.
_START_SECONDS = 30.0


def add_admin_url(parser: argparse.ArgumentParser) -> None:
    """``--admin-url``: a database URL allowed to create the benchmark's databases."""
    parser.add_argument(
        "--admin-url", default=os.environ.get("EXPORTD_BENCH_DATABASE_URL", DEFAULT_ADMIN_URL)
    )


def database_url(admin: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``admin``."""
    return f"{admin.rsplit('/', 1)[0]}/{name}"


async def create_database(admin: str, name: str, *, fresh: bool) -> str:
    """Database ``name``, created when missing (dropped first when ``fresh``); its URL."""
    conn = await asyncpg.connect(admin)
    try:
        if fresh:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return database_url(admin, name)


def s3_client(endpoint: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


@contextlib.contextmanager
def rclone(workdir: Path) -> Iterator[str]:
    """``rclone serve s3`` on a free loopback port, its files under ``workdir``; its URL."""
    port = free_port()
    data = workdir / "s3"
    data.mkdir()
    (workdir / "rclone.conf").touch()
    url = f"http://127.0.0.1:{port}"
    argv = [
        find_binary("rclone"),
        "serve",
        "s3",
        "--config",
        str(workdir / "rclone.conf"),
        "--addr",
        f"127.0.0.1:{port}",
        "--auth-key",
        f"{ACCESS_KEY},{SECRET_KEY}",
        str(data),
    ]
    with run_server("rclone serve s3", argv, url, workdir / "rclone.log"):
        yield url


def daemon_env(
    dsn: str, endpoint: str, bucket: str, definitions: Path, **settings: str
) -> dict[str, str]:
    """The environment of an ``exportd run`` on this benchmark's database and bucket:
    none of the caller's own ``EXPORTD_*`` settings, plus ``settings`` (by setting name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTD_")}
    return env | {
        "PYTHONPATH": str(ROOT),
        "EXPORTD_DATABASE_URL": dsn,
        "EXPORTD_S3_BUCKET": bucket,
        "EXPORTD_S3_ENDPOINT_URL": endpoint,
        "EXPORTD_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "EXPORTD_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "EXPORTD_DEFINITIONS": str(definitions),
        "EXPORTD_API_PORT": str(free_port()),
        **{f"EXPORTD_{name.upper()}": value for name, value in settings.items()},
    }


@contextlib.contextmanager
def exportd_run(
    env: dict[str, str], workdir: Path, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """An ``exportd run`` process, yielded once its API answers; stopped with SIGTERM."""
    port = int(env["EXPORTD_API_PORT"])
    with contextlib.ExitStack() as stack:
        stderr = stack.enter_context(log.open("ab")) if log is not None else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "exportd", "run"], env=env, cwd=workdir, stderr=stderr
        )
        try:
            deadline = time.monotonic() + _START_SECONDS
            while True:
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    where = f"; see {log}" if log is not None else ""
                    raise RuntimeError(f"exportd did not start{where}")
                time.sleep(0.05)
            yield proc
        finally:
            proc.terminate()
            proc.wait(30)


async def postmaster(dsn: str) -> psutil.Process:
    """The Postgres server's main process: every backend is its child."""
    conn = await asyncpg.connect(dsn)
    try:
        # Asked while the backend lives: it is gone once the connection closes.
        backend = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()"))
        return psutil.Process(backend.ppid())
    finally:
        await conn.close()


def rclone_process() -> psutil.Process:
    """The ``rclone serve s3`` this process started with ``rclone()``."""
    [found] = [p for p in psutil.Process().children() if "rclone" in p.name()]
    return found


class CpuMeter:
    """CPU time of named processes (each with its children) and of the whole machine,
    from construction to ``shares()``, as fractions of the wall time between
    (1.0 = one core; the machine's goes up to the number of cores)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._machine = psutil.cpu_times()
        self._wall = time.perf_counter()
        self._spent = {name: self._cpu(proc) for name, proc in self._procs.items()}

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        total = 0.0
        with contextlib.suppress(psutil.Error):
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
        return total

    def shares(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        found = {
            name: (self._cpu(proc) - self._spent[name]) / wall for name, proc in self._procs.items()
        }
        after = psutil.cpu_times()
        spent = {f: getattr(after, f) - getattr(self._machine, f) for f in after._fields}
        total = sum(spent.values()) or 1.0
        idle = spent["idle"] + spent.get("iowait", 0.0)
        found["machine"] = (total - idle) / total * (os.cpu_count() or 1)
        return found
