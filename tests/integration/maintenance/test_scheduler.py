"""The scheduler against real Postgres: exactly one job per occurrence, however many
daemons run it; one job after a long gap; a bad schedule fails alone.

Time is driven through ``run_once(now=...)``: an hour of minutely occurrences
takes a fraction of a second.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from exportd import database
from exportd.maintenance.scheduler import UNREADABLE_RETRY, Scheduler
from exportd.queue import cron
from exportd.queue.postgres import PgJobStore

T0 = datetime(2025, 10, 25, 22, 0, tzinfo=UTC)  # the night Zurich falls back


def valid(kind: str, params: Mapping[str, Any], options: Any = None) -> list[str]:
    return []


async def add_schedule(
    pool: asyncpg.Pool,
    expression: str,
    *,
    zone: str = "UTC",
    owner: str = "u1",
    kind: str = "orders",
    next_run_at: datetime | None = None,
    enabled: bool = True,
    params: str = '{"since": "2025-01-01"}',
) -> uuid.UUID:
    """A schedule as an application would insert it (next_run_at given or NULL)."""
    schedule_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO exportd.schedules (owner, kind, params, cron, timezone, enabled,"
        " next_run_at) VALUES ($1, $2, $3::text::jsonb, $4, $5, $6, $7) RETURNING id",
        owner,
        kind,
        params,
        expression,
        zone,
        enabled,
        next_run_at,
    )
    return schedule_id


async def jobs_of(pool: asyncpg.Pool, schedule_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM exportd.jobs WHERE schedule_id = $1 ORDER BY dedupe_key", schedule_id
    )
    return rows


async def schedule(pool: asyncpg.Pool, schedule_id: uuid.UUID) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM exportd.schedules WHERE id = $1", schedule_id)
    assert row is not None
    return row


@pytest.fixture
async def pools(dsn: str) -> AsyncIterator[list[asyncpg.Pool]]:
    """Three pools of their own, as three daemons would have."""
    made = [await database.create_pool(dsn, min_size=1, max_size=2) for _ in range(3)]
    yield made
    await asyncio.gather(*(p.close() for p in made))


async def test_three_daemons_make_exactly_one_job_per_occurrence(
    pool: asyncpg.Pool, pools: list[asyncpg.Pool]
) -> None:
    expressions = {
        "* * * * *": "UTC",
        "*/7 * * * *": "Europe/Zurich",
        "0 * * * *": "Europe/Zurich",  # both passes of the repeated hour
        "30 2 * * *": "Europe/Zurich",  # once, on the night the clocks fall back
        "15 * * * *": "America/New_York",
    }
    ids = {}
    for expression, zone in expressions.items():
        first = cron.next_after(cron.parse(expression, zone), T0)
        ids[expression] = await add_schedule(pool, expression, zone=zone, next_run_at=first)
    schedulers = [Scheduler(PgJobStore(p), valid, batch_size=2) for p in pools]
    end = T0 + timedelta(hours=4)
    now = T0
    while now < end:
        now += timedelta(seconds=30)
        # All three at the same instant, twice: they contend for the same rows.
        for _ in range(2):
            await asyncio.gather(*(s.run_once(now) for s in schedulers))
    for expression, zone in expressions.items():
        spec = cron.parse(expression, zone)
        expected, at = [], T0
        while (at := cron.next_after(spec, at)) <= now:
            expected.append(cron.occurrence_key(ids[expression], at))
        jobs = await jobs_of(pool, ids[expression])
        assert sorted(j["dedupe_key"] for j in jobs) == sorted(expected), expression
        assert {(j["owner"], j["kind"], j["format"]) for j in jobs} == {("u1", "orders", "csv")}
    assert len(await jobs_of(pool, ids["* * * * *"])) == 4 * 60
    assert len(await jobs_of(pool, ids["0 * * * *"])) == 4  # 02:00 local twice
    assert len(await jobs_of(pool, ids["30 2 * * *"])) == 1
    total = await pool.fetchval("SELECT count(*) FROM exportd.jobs")
    assert total == sum([len(await jobs_of(pool, i)) for i in ids.values()])


async def test_a_long_gap_makes_one_job_and_the_schedule_resumes_after_it(
    pool: asyncpg.Pool,
) -> None:
    schedule_id = await add_schedule(pool, "0 * * * *", next_run_at=T0)
    scheduler = Scheduler(PgJobStore(pool), valid)
    later = T0 + timedelta(days=30, minutes=10)  # 720 hourly occurrences missed
    assert await scheduler.run_once(later) == 1
    assert await scheduler.run_once(later) == 0
    [job] = await jobs_of(pool, schedule_id)
    assert job["dedupe_key"] == cron.occurrence_key(schedule_id, T0)
    row = await schedule(pool, schedule_id)
    assert row["next_run_at"] == later.replace(minute=0) + timedelta(hours=1)
    assert (row["last_job_id"], row["last_run_at"], row["last_error"]) == (job["id"], later, None)


async def test_catch_up_none_skips_what_was_missed(pool: asyncpg.Pool) -> None:
    schedule_id = await add_schedule(pool, "0 * * * *", next_run_at=T0)
    scheduler = Scheduler(PgJobStore(pool), valid, catch_up="none")
    later = T0 + timedelta(days=2, minutes=30)
    with capture_logs() as logs:
        assert await scheduler.run_once(later) == 1
    assert await jobs_of(pool, schedule_id) == []
    assert [e["event"] for e in logs] == ["schedule_occurrences_skipped"]
    # The next occurrence, found on time, runs.
    due = (await schedule(pool, schedule_id))["next_run_at"]
    assert await scheduler.run_once(due + timedelta(seconds=30)) == 1
    assert len(await jobs_of(pool, schedule_id)) == 1


async def test_a_disabled_schedule_makes_no_job(pool: asyncpg.Pool) -> None:
    schedule_id = await add_schedule(pool, "* * * * *", next_run_at=T0, enabled=False)
    scheduler = Scheduler(PgJobStore(pool), valid)
    assert await scheduler.run_once(T0 + timedelta(hours=3)) == 0
    assert await jobs_of(pool, schedule_id) == []
    assert (await schedule(pool, schedule_id))["next_run_at"] == T0


async def test_a_row_inserted_without_next_run_at_starts_at_its_next_occurrence(
    pool: asyncpg.Pool,
) -> None:
    schedule_id = await add_schedule(pool, "0 8 * * 1", zone="Europe/Zurich")
    scheduler = Scheduler(PgJobStore(pool), valid)
    assert await scheduler.run_once(T0) == 1
    assert await jobs_of(pool, schedule_id) == []
    row = await schedule(pool, schedule_id)
    assert row["next_run_at"] == datetime(2025, 10, 27, 7, tzinfo=UTC)  # Monday 08:00 CET


async def test_a_bad_schedule_fails_alone(pool: asyncpg.Pool) -> None:
    good = await add_schedule(pool, "*/5 * * * *", next_run_at=T0)
    unreadable = await add_schedule(pool, "every day at noon", next_run_at=T0)
    unknown_zone = await add_schedule(pool, "0 * * * *", zone="Mars/Olympus", next_run_at=T0)
    refused = await add_schedule(pool, "*/5 * * * *", owner="refused", next_run_at=T0)
    # The application's own trigger refuses one owner's jobs.
    await pool.execute(
        """
        CREATE FUNCTION refuse_owner() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.owner = 'refused' THEN RAISE EXCEPTION 'no exports for this owner'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_owner BEFORE INSERT ON exportd.jobs
            FOR EACH ROW EXECUTE FUNCTION refuse_owner();
        """
    )
    scheduler = Scheduler(PgJobStore(pool), valid)
    now = T0 + timedelta(minutes=1)
    with capture_logs() as logs:
        assert await scheduler.run_once(now) == 4
    assert len(await jobs_of(pool, good)) == 1
    for bad, says in ((unreadable, "cannot read cron"), (unknown_zone, "IANA time zone")):
        row = await schedule(pool, bad)
        assert says in row["last_error"]
        assert row["next_run_at"] == now + UNREADABLE_RETRY
        assert await jobs_of(pool, bad) == []
    row = await schedule(pool, refused)
    assert "could not be made" in row["last_error"]
    assert "no exports for this owner" in row["last_error"]
    assert row["next_run_at"] == T0 + timedelta(minutes=5)
    assert row["last_job_id"] is None
    assert await jobs_of(pool, refused) == []
    failed = [e for e in logs if e["event"] == "schedule_run_failed"]
    assert {e["schedule_id"] for e in failed} == {str(unreadable), str(unknown_zone), str(refused)}
    # The others go on running at their next occurrences.
    assert await scheduler.run_once(T0 + timedelta(minutes=5)) == 2
    assert len(await jobs_of(pool, good)) == 2


async def test_params_that_no_longer_fit_the_kind_make_a_job_and_say_so(
    pool: asyncpg.Pool,
) -> None:
    schedule_id = await add_schedule(pool, "0 * * * *", next_run_at=T0)

    def changed_kind(kind: str, params: Mapping[str, Any], options: Any) -> list[str]:
        return ["since: is not a parameter of this kind"]

    scheduler = Scheduler(PgJobStore(pool), changed_kind)
    with capture_logs() as logs:
        assert await scheduler.run_once(T0) == 1
    [job] = await jobs_of(pool, schedule_id)
    row = await schedule(pool, schedule_id)
    assert row["last_job_id"] == job["id"]
    assert "no longer fit kind 'orders'" in row["last_error"]
    assert "since: is not a parameter of this kind" in row["last_error"]
    assert "invalid_params" in row["last_error"]
    assert [e["event"] for e in logs] == ["schedule_params_invalid"]
    # A run that goes well clears the error.
    scheduler = Scheduler(PgJobStore(pool), valid)
    assert await scheduler.run_once(T0 + timedelta(hours=1)) == 1
    assert (await schedule(pool, schedule_id))["last_error"] is None


async def test_deleting_a_schedule_keeps_its_jobs_and_purging_jobs_ignores_schedules(
    pool: asyncpg.Pool,
) -> None:
    schedule_id = await add_schedule(pool, "0 * * * *", next_run_at=T0)
    assert await Scheduler(PgJobStore(pool), valid).run_once(T0) == 1
    [job] = await jobs_of(pool, schedule_id)
    await pool.execute("DELETE FROM exportd.schedules WHERE id = $1", schedule_id)
    [kept] = await jobs_of(pool, schedule_id)
    assert kept["id"] == job["id"]
    await pool.execute("DELETE FROM exportd.jobs WHERE id = $1", job["id"])


async def test_due_schedules_are_found_through_their_index(conn: asyncpg.Connection) -> None:
    await conn.execute("SET enable_seqscan = off")
    lines = await conn.fetch(
        "EXPLAIN (FORMAT TEXT) SELECT id FROM exportd.schedules"
        " WHERE enabled AND (next_run_at <= now() OR next_run_at IS NULL)"
    )
    assert "schedules_due_idx" in "\n".join(line[0] for line in lines)


async def test_postgres_knows_every_zone_a_schedule_may_use(conn: asyncpg.Connection) -> None:
    names = {r["name"] for r in await conn.fetch("SELECT name FROM pg_timezone_names")}
    assert cron.known_zones() <= names


async def test_without_a_given_instant_the_round_runs_on_the_database_clock(
    pool: asyncpg.Pool,
) -> None:
    db_now: datetime = await pool.fetchval("SELECT now()")
    due = await add_schedule(pool, "* * * * *", next_run_at=db_now - timedelta(minutes=1))
    later = await add_schedule(pool, "* * * * *", next_run_at=db_now + timedelta(hours=1))
    assert await Scheduler(PgJobStore(pool), valid).run_once() == 1
    assert len(await jobs_of(pool, due)) == 1
    assert await jobs_of(pool, later) == []
    assert (await schedule(pool, due))["next_run_at"] > db_now


@pytest.mark.parametrize("catch_up", ["latest", "none"])
async def test_a_next_run_no_datetime_can_hold_fails_no_round(
    pool: asyncpg.Pool, catch_up: cron.CatchUp
) -> None:
    good = await add_schedule(pool, "*/5 * * * *", next_run_at=T0)
    # An application's "at once" and "long ago": asyncpg reads '-infinity' as a
    # naive datetime.min, and refuses a date BC; '0001-01-01Z' is a year 0 in
    # any zone west of UTC.
    odd = {}
    for when in ("-infinity", "0100-01-01 BC", "0001-01-01T00:00:00Z"):
        odd[when] = await add_schedule(pool, "0 * * * *", zone="America/New_York")
        await pool.execute(
            "UPDATE exportd.schedules SET next_run_at = $2::text::timestamptz WHERE id = $1",
            odd[when],
            when,
        )
    scheduler = Scheduler(PgJobStore(pool), valid, catch_up=catch_up)
    now = T0 + timedelta(minutes=1)
    assert await scheduler.run_once(now) == 4
    assert len(await jobs_of(pool, good)) == 1
    for schedule_id in odd.values():
        row = await schedule(pool, schedule_id)
        # Started from its next occurrence, or tried again later with the reason.
        assert now < row["next_run_at"] <= now + UNREADABLE_RETRY
        assert row["last_error"] is None or "cannot plan the run" in row["last_error"]


async def test_a_posix_zone_the_table_takes_fails_its_row_alone(pool: asyncpg.Pool) -> None:
    # The table's pattern takes 'UTC+3' (Postgres: three hours west of UTC).
    posix = await add_schedule(pool, "0 * * * *", zone="UTC+3", next_run_at=T0)
    good = await add_schedule(pool, "0 * * * *", next_run_at=T0)
    assert await Scheduler(PgJobStore(pool), valid).run_once(T0 + timedelta(minutes=1)) == 2
    assert len(await jobs_of(pool, good)) == 1
    assert await jobs_of(pool, posix) == []
    assert "IANA time zone" in (await schedule(pool, posix))["last_error"]
