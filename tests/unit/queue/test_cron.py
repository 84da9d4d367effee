"""Cron expressions in a schedule's own time zone, across daylight saving time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from exportd import limits
from exportd.queue import cron
from exportd.queue.sql import migrations

ZURICH = ZoneInfo("Europe/Zurich")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def occurrences(expression: str, zone: str, start: datetime, count: int) -> list[datetime]:
    spec = cron.parse(expression, zone)
    found, at = [], start
    for _ in range(count):
        at = cron.next_after(spec, at)
        found.append(at)
    return found


def test_monday_eight_oclock_in_zurich_stays_at_eight_across_both_changes() -> None:
    # Spring forward 2025-03-30, fall back 2025-10-26: 08:00 on the wall clock
    # throughout, so 07:00 UTC in winter and 06:00 UTC in summer.
    runs = occurrences("0 8 * * 1", "Europe/Zurich", utc(2025, 3, 20), 34)
    assert {r.astimezone(ZURICH).strftime("%a %H:%M") for r in runs} == {"Mon 08:00"}
    assert runs[0] == utc(2025, 3, 24, 7)  # winter
    assert runs[1] == utc(2025, 3, 31, 6)  # summer, the day after the change
    assert utc(2025, 10, 20, 6) in runs  # last summer Monday
    assert utc(2025, 10, 27, 7) in runs  # first winter Monday
    # A week apart on the wall clock: an hour less in spring, an hour more in autumn.
    week = timedelta(days=7)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert gaps.count(week - timedelta(hours=1)) == 1
    assert gaps.count(week + timedelta(hours=1)) == 1
    assert set(gaps) == {week, week - timedelta(hours=1), week + timedelta(hours=1)}
    assert all(r.tzinfo is UTC for r in runs)


@pytest.mark.parametrize(
    ("zone", "before", "skipped_day", "at_gap_end"),
    [
        # 02:30 does not exist on the day the clocks jump from 02:00 to 03:00.
        ("Europe/Zurich", utc(2025, 3, 28), (2025, 3, 30), utc(2025, 3, 30, 1)),  # 03:00+02:00
        ("America/New_York", utc(2025, 3, 7), (2025, 3, 9), utc(2025, 3, 9, 7)),  # 03:00-04:00
    ],
)
def test_spring_forward_a_skipped_time_runs_once_at_the_end_of_the_gap(
    zone: str, before: datetime, skipped_day: tuple[int, int, int], at_gap_end: datetime
) -> None:
    runs = occurrences("30 2 * * *", zone, before, 5)
    local = [r.astimezone(ZoneInfo(zone)) for r in runs]
    on_the_day = [
        r for r, loc in zip(runs, local, strict=True) if loc.timetuple()[:3] == skipped_day
    ]
    assert on_the_day == [at_gap_end]
    assert at_gap_end.astimezone(ZoneInfo(zone)).strftime("%H:%M") == "03:00"
    # One run per day, every day.
    assert len({loc.date() for loc in local}) == 5


@pytest.mark.parametrize(
    ("zone", "expression", "before", "repeated_day", "first_pass"),
    [
        # 02:30 happens twice in Zurich on 2025-10-26 (CEST, then CET).
        (
            "Europe/Zurich",
            "30 2 * * *",
            utc(2025, 10, 24),
            (2025, 10, 26),
            utc(2025, 10, 26, 0, 30),
        ),
        # 01:30 happens twice in New York on 2025-11-02 (EDT, then EST).
        (
            "America/New_York",
            "30 1 * * *",
            utc(2025, 10, 31),
            (2025, 11, 2),
            utc(2025, 11, 2, 5, 30),
        ),
    ],
)
def test_fall_back_a_repeated_time_runs_once_at_its_first_pass(
    zone: str,
    expression: str,
    before: datetime,
    repeated_day: tuple[int, int, int],
    first_pass: datetime,
) -> None:
    runs = occurrences(expression, zone, before, 5)
    local = [r.astimezone(ZoneInfo(zone)) for r in runs]
    on_the_day = [
        r for r, loc in zip(runs, local, strict=True) if loc.timetuple()[:3] == repeated_day
    ]
    assert on_the_day == [first_pass]
    assert len({loc.date() for loc in local}) == 5  # a daily job, never twice a day


def test_fall_back_an_hourly_job_runs_in_both_passes_of_the_repeated_hour() -> None:
    runs = occurrences("0 * * * *", "Europe/Zurich", utc(2025, 10, 25, 22, 30), 5)
    # Every elapsed hour, 02:00 twice (CEST and CET).
    assert runs == [utc(2025, 10, 25, 23), *(utc(2025, 10, 26, h) for h in range(0, 4))]
    assert [r.astimezone(ZURICH).strftime("%H:%M%z") for r in runs][1:3] == [
        "02:00+0200",
        "02:00+0100",
    ]


def test_every_thirty_minutes_in_new_york_counts_elapsed_time_through_fall_back() -> None:
    runs = occurrences("*/30 * * * *", "America/New_York", utc(2025, 11, 2, 4), 6)
    assert all(b - a == timedelta(minutes=30) for a, b in itertools.pairwise(runs))


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_named_schedules_mean_their_five_fields(name: str, fields: str) -> None:
    assert cron.cron_fields(name) == fields
    start = utc(2025, 6, 15, 12, 34)
    assert cron.next_after(cron.parse(name, "Europe/Zurich"), start) == cron.next_after(
        cron.parse(fields, "Europe/Zurich"), start
    )


def test_daily_runs_at_local_midnight() -> None:
    [run] = occurrences("@daily", "America/New_York", utc(2025, 7, 1, 12), 1)
    assert run == utc(2025, 7, 2, 4)


@pytest.mark.parametrize(
    ("expression", "zone", "says"),
    [
        ("0 8 * *", "UTC", "five fields"),
        ("0 0 8 * * 1", "UTC", "five fields"),  # seconds: not cron
        ("@fortnightly", "UTC", "unknown name"),
        ("61 8 * * 1", "UTC", None),
        ("0 8 * * funday", "UTC", None),
        ("0 0 31 2 *", "UTC", None),  # never occurs
        ("0 8 * * 1", "Mars/Olympus", "IANA"),
        ("0 8 * * 1", "UTC+3", "IANA"),
        ("0 8 * * 1", "localtime", "IANA"),
        ("0 8 * * 1", "", "empty"),
        ("", "UTC", "empty"),
        ("0 8 * * 1\x00", "UTC", "NUL"),
        ("0 " * 200, "UTC", "bytes"),
    ],
)
def test_what_cannot_be_read_says_why(expression: str, zone: str, says: str | None) -> None:
    with pytest.raises(cron.CronError, match=says):
        cron.parse(expression, zone)


def test_plan_makes_one_job_for_a_long_gap_and_resumes_after_now() -> None:
    spec = cron.parse("0 * * * *", "Europe/Zurich")
    due = utc(2025, 1, 1, 0)
    now = utc(2025, 3, 1, 12, 30)  # two months of hourly occurrences missed
    plan = cron.plan(spec, due, now, "latest", timedelta(minutes=2))
    assert plan == cron.Plan(due, utc(2025, 3, 1, 13))


def test_plan_with_catch_up_none_skips_old_occurrences_and_runs_a_recent_one() -> None:
    spec = cron.parse("0 * * * *", "UTC")
    grace = timedelta(minutes=2)
    long_ago = utc(2025, 1, 1, 0)
    assert cron.plan(spec, long_ago, utc(2025, 3, 1, 12, 30), "none", grace) == cron.Plan(
        None, utc(2025, 3, 1, 13)
    )
    # The latest occurrence passed a minute ago: that one runs.
    assert cron.plan(spec, long_ago, utc(2025, 3, 1, 12, 1), "none", grace) == cron.Plan(
        utc(2025, 3, 1, 12), utc(2025, 3, 1, 13)
    )
    # On time: runs.
    on_time = utc(2025, 3, 1, 12)
    assert (
        cron.plan(spec, on_time, on_time + timedelta(seconds=5), "none", grace).occurrence
        == on_time
    )


def test_plan_of_a_schedule_never_started_makes_no_job() -> None:
    spec = cron.parse("0 8 * * 1", "Europe/Zurich")
    plan = cron.plan(spec, None, utc(2025, 6, 4, 12), "latest", timedelta(minutes=2))
    assert plan == cron.Plan(None, utc(2025, 6, 9, 6))


def test_the_next_run_is_always_after_now() -> None:
    spec = cron.parse("* * * * *", "UTC")
    now = utc(2025, 1, 1, 0, 0)
    assert cron.next_after(spec, now) == utc(2025, 1, 1, 0, 1)
    assert cron.next_after(spec, now + timedelta(microseconds=5)) == utc(2025, 1, 1, 0, 1)


def test_the_dedupe_key_names_schedule_and_occurrence_within_its_bound() -> None:
    key = cron.occurrence_key("0" * 8 + "-0000-0000-0000-" + "0" * 12, utc(2025, 3, 31, 6))
    assert key == "schedule:00000000-0000-0000-0000-000000000000:2025-03-31T06:00:00Z"
    assert len(key.encode()) <= limits.DEDUPE_KEY_MAX_BYTES


def test_the_schedules_migration_holds_the_numbers_of_limits() -> None:
    [sql] = [m.sql for m in migrations() if m.name == "schedules"]
    for number in (
        limits.OWNER_MAX_BYTES,
        limits.KIND_MAX_BYTES,
        limits.PARAMS_MAX_BYTES,
        limits.SCHEDULE_CRON_MAX_BYTES,
        limits.SCHEDULE_TIMEZONE_MAX_BYTES,
        limits.ERROR_MAX_CHARS,
    ):
        assert f"<= {number}" in sql, number
    assert f"{limits.JSON_MAX_DEPTH} to last" in sql


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4,6 *"])
def test_a_day_no_month_named_has_is_said_to_never_occur(expression: str) -> None:
    with pytest.raises(cron.CronError, match="never occurs"):
        cron.parse(expression, "UTC")


def test_a_day_past_31_is_still_a_bad_day_of_the_month() -> None:
    with pytest.raises(cron.CronError, match="Bad day-of-month"):
        cron.parse("0 0 32 * *", "UTC")
