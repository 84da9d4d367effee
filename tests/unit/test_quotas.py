"""Per-kind quotas: the definition's table read, and the sliding-window rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exportd.quotas import (
    Quota,
    Standing,
    iso_duration,
    iso_utc,
    parse_quota,
    refusal_message,
    retry_at,
    seconds_until,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
ONE_A_DAY = Quota(1, DAY, "P1D")
COUNTED, REFUSED, UNDECIDED = Standing.COUNTED, Standing.REFUSED, Standing.UNDECIDED


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"max": 1, "per": "P1D"}, Quota(1, DAY, "P1D")),
        ({"max": 3, "per": "PT6H"}, Quota(3, timedelta(hours=6), "PT6H")),
        ({"max": 10, "per": "P1W"}, Quota(10, timedelta(days=7), "P1W")),
        ({"max": 1, "per": "PT1S"}, Quota(1, timedelta(seconds=1), "PT1S")),
        ({"max": 1, "per": "P1Y"}, Quota(1, timedelta(days=365), "P1Y")),
    ],
)
def test_a_sound_quota_is_read(raw: dict[str, object], expected: Quota) -> None:
    assert parse_quota(raw) == (expected, [])


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"max": 0, "per": "P1D"}, "max must be a whole number from 1 to 1000000, got 0"),
        ({"max": -1, "per": "P1D"}, "max must be a whole number from 1 to 1000000, got -1"),
        ({"max": True, "per": "P1D"}, "max must be a whole number from 1 to 1000000, got True"),
        ({"max": 1.5, "per": "P1D"}, "got 1.5"),
        ({"max": "1", "per": "P1D"}, "got '1'"),
        ({"per": "P1D"}, "max is required"),
        ({"max": 1}, "per is required"),
        ({"max": 1, "per": 86400}, 'per must be an ISO 8601 duration such as "P1D"'),
        ({"max": 1, "per": "1 day"}, "got '1 day'"),
        ({"max": 1, "per": "01:00:00"}, "got '01:00:00'"),
        ({"max": 1, "per": "P1Q"}, "got 'P1Q'"),
        ({"max": 1, "per": "PT0S"}, "per must be from 1 second to 366 days, got 'PT0S'"),
        ({"max": 1, "per": "PT0.5S"}, "per must be from 1 second to 366 days"),
        ({"max": 1, "per": "P400D"}, "per must be from 1 second to 366 days, got 'P400D'"),
        ({"max": 1, "per": "P1D", "window": 3}, "unknown key 'window' (allowed: max, per)"),
        ("P1D", "quota must be a table"),
    ],
)
def test_a_bad_quota_is_refused_saying_why(raw: object, problem: str) -> None:
    quota, problems = parse_quota(raw)
    assert quota is None
    assert any(problem in p for p in problems), problems


def test_every_problem_of_a_quota_is_reported_at_once() -> None:
    _, problems = parse_quota({"max": 0, "per": "soon", "extra": 1})
    assert len(problems) == 3


def test_within_the_quota_there_is_no_retry_time() -> None:
    assert retry_at([], ONE_A_DAY, hours(0)) is None
    assert retry_at([(hours(0), COUNTED)], Quota(2, DAY), hours(1)) is None


def test_over_the_quota_the_retry_time_is_when_the_oldest_counted_leaves_the_window() -> None:
    history = [(hours(0), COUNTED), (hours(5), COUNTED)]
    assert retry_at(history, Quota(2, DAY), hours(6)) == hours(24)
    # max = 1: the newest counted job is the one to wait for.
    assert retry_at(history, ONE_A_DAY, hours(6)) == hours(29)


def test_a_job_created_just_outside_the_window_does_not_count() -> None:
    assert retry_at([(hours(0), COUNTED)], ONE_A_DAY, hours(24)) is None
    edge = hours(24) - timedelta(microseconds=1)
    assert retry_at([(hours(0), COUNTED)], ONE_A_DAY, edge) == hours(24)


def test_jobs_refused_for_quota_do_not_count_whatever_else_does() -> None:
    assert retry_at([(hours(1), REFUSED), (hours(2), REFUSED)], ONE_A_DAY, hours(3)) is None
    assert retry_at([(hours(1), COUNTED)], ONE_A_DAY, hours(3)) == hours(25)


def test_an_undecided_job_counts_as_its_own_decision_says() -> None:
    # A at 0 h counted; B at 1 h undecided, refused by A; C at 25 h: A has
    # left C's window and B, refused, does not count, whatever order they
    # were claimed in.
    history = [(hours(0), COUNTED), (hours(1), UNDECIDED)]
    assert retry_at(history, ONE_A_DAY, hours(25)) is None
    # Had B been decided already, the answer is the same.
    decided = [(hours(0), COUNTED), (hours(1), REFUSED)]
    assert retry_at(decided, ONE_A_DAY, hours(25)) is None
    # An undecided job with room in its window counts.
    assert retry_at([(hours(0), UNDECIDED)], ONE_A_DAY, hours(2)) == hours(24)


def test_a_chain_of_undecided_jobs_is_decided_in_creation_order() -> None:
    # One a day, a job every 13 hours: every other one is refused.
    history = [(hours(13 * i), UNDECIDED) for i in range(6)]  # 0, 13, 26, 39, 52, 65
    # 0 in, 13 out, 26 in, 39 out, 52 in, 65 out; at 70 h, 52 h is in the window.
    assert retry_at(history, ONE_A_DAY, hours(70)) == hours(76)
    assert retry_at(history, ONE_A_DAY, hours(77)) is None


def test_retry_after_is_whole_seconds_rounded_up_and_never_zero() -> None:
    assert seconds_until(hours(1), hours(0)) == 3600
    assert seconds_until(hours(1), hours(1) - timedelta(milliseconds=1)) == 1
    assert seconds_until(hours(1) + timedelta(milliseconds=1), hours(0)) == 3601
    assert seconds_until(hours(0), hours(1)) == 1


def test_a_quota_is_described_for_callers() -> None:
    assert ONE_A_DAY.describe() == {"max": 1, "per": "P1D", "per_seconds": 86400.0}
    assert Quota(2, timedelta(days=1, seconds=30)).describe()["per"] == "P1DT30S"
    assert iso_duration(timedelta(hours=6)) == "PT21600S"
    assert iso_utc(hours(1)) == "2025-01-01T01:00:00Z"
    message = refusal_message("full", ONE_A_DAY, hours(30))
    assert "at most 1 export per P1D" in message
    assert message.endswith("it can be asked for again at 2025-01-02T06:00:00Z")
