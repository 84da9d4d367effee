"""``exportd enqueue`` in-process, against real Postgres: every problem at once, named
as typed, and a kind's quota."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from exportd.cli import commands
from exportd.cli.exits import EXIT_TRY_LATER, EXIT_USAGE, CliError
from exportd.quotas import Quota, refusal_message
from exportd.settings.model import Settings

ONE_A_DAY = Quota(1, timedelta(days=1), "P1D")

KINDS = """
[kinds.full]
query = "SELECT 1 AS n WHERE :owner <> ''"
[kinds.full.quota]
max = 1
per = "P1D"

[kinds.numbers]
query = "SELECT g AS n FROM generate_series(1, :upto) AS g WHERE :owner <> ''"
[kinds.numbers.params.upto]
type = "integer"
min = 1
required = true
"""


def settings(dsn: str, definitions: Path | None) -> Settings:
    return Settings(_env_file=None, database_url=dsn, definitions=definitions)  # type: ignore[call-arg]


@pytest.fixture
def kinds(tmp_path: Path) -> Path:
    path = tmp_path / "kinds.toml"
    path.write_text(KINDS)
    return path


async def enqueue(s: Settings, kind: str, owner: str, **kw: Any) -> int:
    values: dict[str, Any] = {
        "params": {},
        "fmt": None,
        "priority": 0,
        "max_attempts": 5,
        "dedupe_key": None,
        "wait": False,
        "wait_seconds": None,
    }
    values.update(kw)
    return await commands.enqueue(s, kind=kind, owner=owner, **values)


async def test_a_bad_kind_is_named_as_typed(dsn: str, kinds: Path, pool: asyncpg.Pool) -> None:
    with pytest.raises(CliError) as refused:
        await enqueue(settings(dsn, kinds), "full\x1b", "alice")
    assert str(refused.value) == "KIND must not contain control characters"
    assert refused.value.code == EXIT_USAGE
    assert "--kind" not in str(refused.value)
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 0


async def test_every_problem_is_reported_at_once_values_first(dsn: str, kinds: Path) -> None:
    with pytest.raises(CliError) as refused:
        await enqueue(
            settings(dsn, kinds),
            "numbers",
            "",
            params={"upto": 0, "x": 1},
            priority=99_999,
            fmt="parquet-ish",
        )
    message = str(refused.value)
    parts = message.split("; ")
    assert parts[0] == "--owner must not be empty"
    assert parts[1] == "--priority must be a whole number from -32768 to 32767"
    # Then the kind's: its params (every problem), then the format.
    assert "upto" in "; ".join(parts[2:-1])
    assert "unknown parameter 'x'" in parts[2:-1]
    assert parts[-1].startswith("format 'parquet-ish' is not supported")
    assert refused.value.code == EXIT_USAGE


async def test_values_are_checked_without_definitions_too(dsn: str) -> None:
    with pytest.raises(CliError) as refused:
        await enqueue(settings(dsn, None), "k" * 200, "alice", max_attempts=0)
    assert str(refused.value) == (
        "KIND must be at most 128 bytes of UTF-8 (it has 200); "
        "--max-attempts must be a whole number from 1 to 100"
    )


async def test_over_the_quota_it_says_when_and_exits_try_later(
    dsn: str, kinds: Path, pool: asyncpg.Pool
) -> None:
    s = settings(dsn, kinds)
    assert await enqueue(s, "full", "alice") == 0
    with pytest.raises(CliError) as refused:
        await enqueue(s, "full", "alice")
    assert refused.value.code == EXIT_TRY_LATER
    created = await pool.fetchval("SELECT created_at FROM exportd.jobs WHERE owner = 'alice'")
    assert str(refused.value) == refusal_message("full", ONE_A_DAY, created + timedelta(days=1))
    assert await enqueue(s, "full", "bob") == 0
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 2
