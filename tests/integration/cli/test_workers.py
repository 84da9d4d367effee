"""``exportd workers`` in-process, against real Postgres: the daemons alive, each with
its running jobs, as lines and as GET /v1/workers's document."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg
import pytest

from exportd.cli.exits import EXIT_OK
from exportd.cli.main import _parser
from exportd.cli.workers import workers
from exportd.queue.postgres import PgJobStore
from exportd.queue.workers import WorkerIdentity
from exportd.settings.model import Settings
from tests.support.helpers import insert_job


def settings(dsn: str) -> Settings:
    return Settings(_env_file=None, database_url=dsn)  # type: ignore[call-arg]


async def _daemon(pool: asyncpg.Pool, worker_id: str) -> None:
    await PgJobStore(pool).announce_worker(
        WorkerIdentity(worker_id, "0.1.0", "host-a", 42, datetime(2026, 1, 1, tzinfo=UTC), 2, 10.0)
    )


async def test_lists_each_daemon_with_its_jobs(
    dsn: str, pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    await _daemon(pool, "w-busy")
    await _daemon(pool, "w-idle")
    job_id = await insert_job(pool, owner="u1", kind="orders")
    await PgJobStore(pool).claim("w-busy", 1, 30.0)

    assert await workers(settings(dsn), as_json=False) == EXIT_OK

    lines = capsys.readouterr().out.splitlines()
    busy = next(i for i, line in enumerate(lines) if line.startswith("w-busy "))
    assert "v0.1.0 on host-a (pid 42)" in lines[busy]
    assert lines[busy].endswith("running 1/2")
    assert lines[busy + 1] == f"  {job_id} orders for u1: 0%, 0 rows, attempt 1/5"
    assert any(line.startswith("w-idle ") and line.endswith("running 0/2") for line in lines)


async def test_json_is_the_documents_of_the_api(
    dsn: str, pool: asyncpg.Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    await _daemon(pool, "w1")

    assert await workers(settings(dsn), as_json=True) == EXIT_OK

    [doc] = json.loads(capsys.readouterr().out)["workers"]
    assert (doc["worker_id"], doc["host"], doc["pid"], doc["running"]) == ("w1", "host-a", 42, [])


async def test_no_daemon_alive_is_said_so(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await workers(settings(dsn), as_json=False) == EXIT_OK
    assert capsys.readouterr().out == "no daemon is alive\n"


def test_the_verb_is_on_the_command_line() -> None:
    args = _parser().parse_args(["workers", "--json"])
    assert (args.command, args.json) == ("workers", True)
