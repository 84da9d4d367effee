"""The command line's statements on the queue have a deadline: a lock another session
holds ends the command with a message, never an operator's shell waiting for good."""

from __future__ import annotations

import time
import uuid

import asyncpg
import pytest

from exportd import database
from exportd.cli import commands, schedules
from exportd.cli.exits import EXIT_TRY_LATER, CliError
from exportd.settings.model import Settings


async def test_a_schedule_locked_elsewhere_ends_the_command_at_its_deadline(
    dsn: str, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands, "CLI_STATEMENT_SECONDS", 1.0, raising=False)
    schedule_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO exportd.schedules (owner, kind, cron) VALUES ('u1', 'orders', '@daily')"
        " RETURNING id"
    )
    settings = Settings(_env_file=None, database_url=dsn)  # type: ignore[call-arg]
    # An application's (or a psql session's) transaction holds the row.
    holder = await database.connect(dsn)
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM exportd.schedules WHERE id = $1 FOR UPDATE", schedule_id
            )
            started = time.monotonic()
            with pytest.raises(CliError) as stopped:
                await schedules._remove(settings, schedule_id)
            assert time.monotonic() - started < 10
    finally:
        await holder.close()
    assert stopped.value.code == EXIT_TRY_LATER
    assert "did not answer within 1 s" in str(stopped.value)
    # Nothing was removed; once the lock is gone, the command goes through.
    assert await schedules._remove(settings, schedule_id) == 0
