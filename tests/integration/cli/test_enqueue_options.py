"""``exportd enqueue --option`` in-process, against real Postgres."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from exportd.cli import commands
from exportd.cli.exits import EXIT_USAGE, CliError
from exportd.cli.options import parse_options
from exportd.settings.model import Settings

KINDS = """
[kinds.orders]
query = "SELECT 1 AS id WHERE :owner <> '' AND :upto > 0"
locked_options = ["json.big_numbers"]
[kinds.orders.params.upto]
type = "integer"
"""


@pytest.fixture
def settings(dsn: str, tmp_path: Path) -> Settings:
    path = tmp_path / "kinds.toml"
    path.write_text(KINDS)
    return Settings(_env_file=None, database_url=dsn, definitions=path)  # type: ignore[call-arg]


async def enqueue(settings: Settings, params: dict[str, object], *pairs: str) -> int:
    return await commands.enqueue(
        settings,
        kind="orders",
        owner="alice",
        params=params,
        fmt=None,
        priority=0,
        max_attempts=5,
        dedupe_key=None,
        wait=False,
        wait_seconds=None,
        options=parse_options(pairs),
    )


async def test_options_are_stored_with_the_job(settings: Settings, pool: asyncpg.Pool) -> None:
    code = await enqueue(settings, {"upto": 3}, "csv.profile=excel", "timezone=Asia/Kolkata")
    assert code == 0
    stored = await pool.fetchval("SELECT options FROM exportd.jobs WHERE owner = 'alice'")
    assert stored == {"csv": {"profile": "excel"}, "timezone": "Asia/Kolkata"}


async def test_params_and_options_problems_are_reported_together(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    with pytest.raises(CliError) as refused:
        await enqueue(settings, {"upto": "many"}, "csv.delimiter=:", "json.big_numbers=string")
    message = str(refused.value)
    assert "upto" in message
    assert "options.csv.delimiter must be one of" in message
    assert "options.json.big_numbers is locked by kind 'orders'" in message
    assert refused.value.code == EXIT_USAGE
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 0


async def test_a_time_zone_postgres_does_not_know_is_refused(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    with pytest.raises(CliError, match="not a time zone the database knows"):
        await enqueue(settings, {"upto": 1}, "timezone=Mars/Olympus")
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 0


async def test_without_definitions_the_options_shape_is_checked_before_the_insert(
    dsn: str, pool: asyncpg.Pool
) -> None:
    bare = Settings(_env_file=None, database_url=dsn)  # type: ignore[call-arg]
    with pytest.raises(CliError) as refused:
        await enqueue(bare, {"upto": 1}, "split_rows=0", "csv.bom=1", "csv.quote=x")
    message = str(refused.value)
    assert "options.split_rows must be a whole number" in message
    assert "options.csv.bom must be true or false" in message
    assert "options.csv.quote is not an option" in message
    assert refused.value.code == EXIT_USAGE
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 0
    assert await enqueue(bare, {"upto": 1}, "csv.null=NaN", "split_rows=10") == 0
    stored = await pool.fetchval("SELECT options FROM exportd.jobs WHERE owner = 'alice'")
    assert stored == {"csv": {"null": "NaN"}, "split_rows": 10}
