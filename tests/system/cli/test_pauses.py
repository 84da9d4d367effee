"""`exportd pause` and `exportd resume`, run as real processes against real Postgres."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import asyncpg

from exportd.queue.postgres import PgJobStore
from tests.support.helpers import clean_env, exportd, insert_job

KINDS = """
[kinds.numbers]
query = "SELECT 1 AS n WHERE :owner <> ''"

[kinds.letters]
query = "SELECT 'a' AS l WHERE :owner <> ''"
"""


async def test_pause_and_resume_a_kind_then_every_kind(
    dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    (tmp_path / "kinds.toml").write_text(KINDS)
    env = clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"))
    store = PgJobStore(pool)

    paused = await exportd("pause", "numbers", "--reason", "source upgrade", env=env, cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.strip() == (
        "paused numbers: no daemon claims its jobs until `exportd resume numbers`"
    )
    [pause] = await store.paused_kinds()
    assert (pause.kind, pause.reason) == ("numbers", "source upgrade")
    assert pause.paused_by.startswith(f"{getpass.getuser()}@")
    # Logged on stderr, with who did it; stdout is for the person.
    [logged] = [json.loads(line) for line in paused.stderr.splitlines() if "kind_paused" in line]
    assert (logged["kind"], logged["paused_by"]) == ("numbers", pause.paused_by)

    again = await exportd("pause", "numbers", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "was paused already" in again.stdout
    assert "source upgrade" in again.stdout

    job_id = await insert_job(pool, kind="numbers")
    assert await store.claim("w1", 5, 30.0) == []

    everything = await exportd("pause", "--all", env=env, cwd=tmp_path)
    assert (everything.returncode, everything.stdout.strip()) == (
        0,
        "paused every kind: no daemon claims its jobs until `exportd resume --all`",
    )
    # numbers' own pause is lifted, but every kind is still paused: exit 1, and why.
    held = await exportd("resume", "numbers", env=env, cwd=tmp_path)
    assert held.returncode == 1
    assert "still paused: every kind is" in held.stdout
    assert "exportd resume --all" in held.stdout

    resumed = await exportd("resume", "--all", env=env, cwd=tmp_path)
    assert (resumed.returncode, resumed.stdout.strip()) == (0, "resumed every kind")
    assert [j.id for j in await store.claim("w1", 5, 30.0)] == [job_id]

    idle = await exportd("resume", "letters", env=env, cwd=tmp_path)
    assert (idle.returncode, idle.stdout.strip()) == (0, "letters was not paused")
    nothing = await exportd("resume", "--all", env=env, cwd=tmp_path)
    assert (nothing.returncode, nothing.stdout.strip()) == (0, "no kind was paused")


async def test_a_kind_must_be_known_and_the_flags_make_sense(
    dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    (tmp_path / "kinds.toml").write_text(KINDS)
    env = clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"))
    unknown = await exportd("pause", "orders", env=env, cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no export kind named 'orders'" in unknown.stderr
    assert "letters, numbers" in unknown.stderr

    both = await exportd("pause", "numbers", "--all", env=env, cwd=tmp_path)
    neither = await exportd("resume", env=env, cwd=tmp_path)
    assert (both.returncode, neither.returncode) == (2, 2)

    long_reason = await exportd("pause", "numbers", "--reason", "x" * 1025, env=env, cwd=tmp_path)
    assert long_reason.returncode == 2
    assert "reason must be at most 1024 bytes" in long_reason.stderr

    # Without definitions, any kind's name may be paused, and only a name.
    bare = clean_env(EXPORTD_DATABASE_URL=dsn)
    assert (await exportd("pause", "orders", env=bare, cwd=tmp_path)).returncode == 0
    star = await exportd("pause", "*", env=bare, cwd=tmp_path)
    assert star.returncode == 2
    assert "is not a kind's name" in star.stderr
    assert [p.kind for p in await PgJobStore(pool).paused_kinds()] == ["orders"]


async def test_check_mentions_the_paused_kinds(dsn: str, tmp_path: Path) -> None:
    (tmp_path / "kinds.toml").write_text(KINDS)
    env = clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"))
    before = await exportd("check", env=env, cwd=tmp_path)
    assert "ok    paused kinds: none" in before.stdout.splitlines(), before.stdout
    assert (
        await exportd("pause", "letters", "--reason", "why", env=env, cwd=tmp_path)
    ).returncode == 0
    after = await exportd("check", env=env, cwd=tmp_path)
    [line] = [line for line in after.stdout.splitlines() if "paused kinds" in line]
    assert line.startswith("ok    paused kinds: letters since ")
    assert line.endswith(": why")
