"""`exportd dev`, the README's first command, end to end as a user runs it."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.support.fixtures_s3 import free_port
from tests.support.helpers import clean_env, eventually, exportd, healthy


@pytest.fixture
async def dev_database(admin_url: str) -> AsyncIterator[str]:
    """A database name for `exportd dev` to create, dropped afterwards."""
    name = f"exportd_devtest_{uuid.uuid4().hex[:8]}"
    yield name
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def dashboard_opens(output: str, port: int) -> None:
    """The dashboard's address and token are printed, and the token logs in."""
    found = re.search(r"dashboard (http://\S+/ui/)  \(admin token: (\S+)\)", output)
    assert found, output
    assert found.group(1) == f"http://127.0.0.1:{port}/ui/"
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as session,
        session.post(
            f"{found.group(1)}login", data={"token": found.group(2)}, allow_redirects=False
        ) as response,
    ):
        assert response.status == 303


async def run_dev_and_export(tmp_path: Path, database: str, *extra: str) -> str:
    state = tmp_path / "state"
    port = free_port()
    env = clean_env()
    log = (tmp_path / "dev.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exportd",
            "dev",
            "--dir",
            str(state),
            "--port",
            str(port),
            "--database",
            database,
            *extra,
        ],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            await eventually(lambda: healthy(port), timeout=90, interval=0.2)
        except AssertionError as exc:
            # What the dev process said is the only clue to why it never answered.
            tail = (tmp_path / "dev.log").read_text(errors="replace")[-4000:]
            raise AssertionError(f"{exc}; exit code {proc.poll()}; dev.log ends:\n{tail}") from None
        output = (tmp_path / "dev.log").read_text()
        assert "enqueue orders --owner alice" in output
        await dashboard_opens(output, port)
        enqueue = await exportd(
            "--env-file",
            str(state / "exportd.env"),
            "enqueue",
            "orders",
            "--owner",
            "alice",
            "--param",
            "since=2024-03-01",
            "--wait",
            env=env,
            cwd=tmp_path,
        )
        assert enqueue.returncode == 0, enqueue.stderr
        url = enqueue.stdout.strip().splitlines()[-1]
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            body = await response.text()
        proc.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(proc.wait, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert code == 0, (tmp_path / "dev.log").read_text()
    return body


async def test_dev_runs_the_demo_on_local_postgres(tmp_path: Path, dev_database: str) -> None:
    body = await run_dev_and_export(tmp_path, dev_database)
    lines = body.splitlines()
    assert lines[0] == "id,placed_at,status,total,currency,items,note"
    assert len(lines) > 1000
    assert all(",alice," not in line for line in lines[:5])  # customer is not exported


async def test_dev_starts_an_embedded_postgres_when_asked() -> None:
    # Not under pytest's tmp_path: the embedded server runs as another user,
    # and pytest keeps /tmp/pytest-of-<user> private (it narrows the folder's
    # mode again whenever a pytest session starts), so that user could lose
    # its way to the data directory while the test runs.
    with tempfile.TemporaryDirectory(prefix="exportd-dev-") as folder:
        root = Path(folder)
        body = await run_dev_and_export(root, "exportd_dev", "--embedded-postgres")
        assert body.startswith("id,placed_at,status")
        # The embedded server was stopped with the command.
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
        assert str(root / "state") not in ps.stdout


async def test_dev_runs_the_definitions_it_is_given(tmp_path: Path, dev_database: str) -> None:
    demo = Path(str(resources.files("exportd.demo").joinpath("definitions.toml")))
    mine = tmp_path / "mine.toml"
    mine.write_text(demo.read_text("utf-8") + '\n[kinds.orders.quota]\nmax = 9\nper = "P1D"\n')
    body = await run_dev_and_export(tmp_path, dev_database, "--definitions", str(mine))
    assert body.startswith("id,placed_at,status")
    settings = (tmp_path / "state" / "exportd.env").read_text("utf-8")
    assert f"EXPORTD_DEFINITIONS={mine}\n" in settings


async def test_dev_refuses_definitions_with_a_problem_before_it_starts(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[kinds.orders]\nquery = "SELECT 1"\nformats = ["xls"]\n')
    result = await exportd(
        "dev",
        "--dir",
        str(tmp_path / "state"),
        "--definitions",
        str(broken),
        env=clean_env(),
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "problem" in result.stderr
    assert str(broken) in result.stderr
    # Nothing was started: no S3 server's files, no settings written.
    assert not (tmp_path / "state" / "exportd.env").exists()
