"""``exportd schedule add|list|remove``, run as a real process against real Postgres."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from tests.support.fixtures_api import KINDS
from tests.support.helpers import clean_env, exportd


def env_for(dsn: str, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "kinds.toml").write_text(KINDS)
    return clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"))


async def test_add_list_remove(dsn: str, tmp_path: Path) -> None:
    env = env_for(dsn, tmp_path)
    added = await exportd(
        "schedule",
        "add",
        "orders",
        "--owner",
        "u1",
        "--cron",
        "0 8 * * 1",
        "--timezone",
        "Europe/Zurich",
        "--param",
        "since=2025-01-01",
        "--format",
        "jsonl",
        env=env,
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)
    first = datetime.fromisoformat(made["next_run_at"])
    assert first > datetime.now(UTC)
    assert first.astimezone(ZoneInfo("Europe/Zurich")).strftime("%a %H:%M") == "Mon 08:00"
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT owner, kind, params::text, format, cron, timezone FROM exportd.schedules"
        )
    finally:
        await conn.close()
    assert tuple(row) == (
        "u1",
        "orders",
        '{"since": "2025-01-01"}',
        "jsonl",
        "0 8 * * 1",
        "Europe/Zurich",
    )

    other = await exportd(
        "schedule", "add", "everything", "--owner", "u2", "--cron", "@daily", env=env, cwd=tmp_path
    )
    assert other.returncode == 0, other.stderr
    mine = await exportd("schedule", "list", "--owner", "u1", env=env, cwd=tmp_path)
    assert [s["id"] for s in json.loads(mine.stdout)] == [made["id"]]
    everyone = await exportd("schedule", "list", env=env, cwd=tmp_path)
    assert len(json.loads(everyone.stdout)) == 2

    removed = await exportd("schedule", "remove", made["id"], env=env, cwd=tmp_path)
    assert (removed.returncode, removed.stdout.strip()) == (0, f"removed schedule {made['id']}")
    again = await exportd("schedule", "remove", made["id"], env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert f"no schedule {made['id']}" in again.stderr
    malformed = await exportd("schedule", "remove", "nope", env=env, cwd=tmp_path)
    assert malformed.returncode == 2
    assert "not a schedule id" in malformed.stderr


async def test_add_reports_every_problem_and_adds_nothing(dsn: str, tmp_path: Path) -> None:
    env = env_for(dsn, tmp_path)
    result = await exportd(
        "schedule",
        "add",
        "orders",
        "--owner",
        "u1",
        "--cron",
        "0 8 * *",
        "--timezone",
        "Mars/Olympus",
        "--format",
        "pdf",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    for flag in ("--cron:", "--timezone:", "--format:", "--params.since:"):
        assert flag in result.stderr, result.stderr
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM exportd.schedules") == 0
    finally:
        await conn.close()
