"""A Postgres cluster of the test's own, to stop and restart at will.

Outage tests must never touch the machine's cluster (other tests run on it):
this one is made with initdb in a temporary directory and served on a free
loopback port. Postgres refuses to run as root, so under root the server
runs as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exportd import database
from exportd.queue.migrations import migrate
from tests.support.fixtures_s3 import free_port

_CANDIDATES = [
    Path("/usr/lib/postgresql/15/bin"),
    Path("/usr/lib/postgresql/16/bin"),
    Path("/usr/lib/postgresql/17/bin"),
]


def postgres_bindir() -> Path | None:
    for path in _CANDIDATES:
        if (path / "pg_ctl").is_file():
            return path
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


@dataclass
class Cluster:
    bindir: Path
    datadir: Path
    port: int
    owner: str | None  # the user the server runs as, when we are root

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def pg_ctl(self, action: str, *extra: str) -> None:
        # fsync off: only an operating system crash would lose data. Commits
        # stay synchronous: with synchronous_commit=off, `pg_ctl stop -m
        # immediate` loses transactions the server had acknowledged (a job
        # completed, then back in processing), which no real server set up
        # for durability does.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir}"
            " -c fsync=off -c full_page_writes=off"
        )
        args = ["pg_ctl", action, "-D", str(self.datadir), "-w", "-t", "30", *extra]
        if action in ("start", "restart"):
            args += ["-o", options, "-l", str(self.datadir / "server.log")]
        self._run(*args)

    async def migrate(self) -> None:
        conn = await database.connect(self.url)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("stop", "-m", mode)

    def start(self) -> None:
        self.pg_ctl("start")


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("no Postgres server binaries (pg_ctl) on this machine")
    owner: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run a cluster as")
        owner = "postgres"
    root = Path(tempfile.mkdtemp(prefix="exportd-pg-"))
    datadir = root / "data"
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(bindir, datadir, free_port(), owner)
    try:
        cluster._run("initdb", "-D", str(datadir), "-U", "postgres", "-A", "trust", "--no-sync")
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
