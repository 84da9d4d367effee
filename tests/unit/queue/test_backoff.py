"""Backoff, retry decisions and lease arithmetic: pure functions, no I/O."""

from __future__ import annotations

import random

import pytest

from exportd.errors import ErrorKind
from exportd.queue.backoff import BackoffPolicy, Fail, Retry, decide, exponential_delay
from exportd.queue.lease import heartbeat_interval, lease_lost_locally, renewal_timeout


def test_schedule_doubles_from_base_to_cap_without_jitter() -> None:
    policy = BackoffPolicy(base_seconds=10, max_seconds=300, jitter=0)
    assert [policy.delay(a) for a in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]


def test_jitter_stays_within_its_band_and_under_the_cap() -> None:
    policy = BackoffPolicy(base_seconds=10, max_seconds=100, jitter=0.2)
    rng = random.Random(7)
    for attempt in range(1, 30):
        nominal = min(10 * 2 ** (attempt - 1), 100)
        delay = policy.delay(attempt, rng)
        assert nominal * 0.8 <= delay <= min(nominal * 1.2, 100)


def test_jitter_spreads_delays() -> None:
    policy = BackoffPolicy(base_seconds=10, max_seconds=100, jitter=0.2)
    rng = random.Random(1)
    assert len({round(policy.delay(1, rng), 3) for _ in range(50)}) > 40


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert BackoffPolicy(jitter=0).delay(10_000) == 3600


def test_exponential_delay_doubles_from_base_to_cap() -> None:
    assert [exponential_delay(n, 0.5, 10.0) for n in range(7)] == [0.5, 1, 2, 4, 8, 10, 10]


def test_exponential_delay_counts_negative_doublings_as_none() -> None:
    assert exponential_delay(-3, 2.0, 30.0) == 2.0


def test_exponential_delay_of_an_endless_outage_stays_at_its_cap() -> None:
    assert exponential_delay(10**9, 2.0, 30.0) == 30.0


def test_exponential_delay_without_jitter_draws_nothing() -> None:
    rng = random.Random(3)
    exponential_delay(4, 1.0, 60.0, rng=rng)
    assert rng.random() == random.Random(3).random()


def test_exponential_delay_jitter_stays_in_its_band_and_under_the_cap() -> None:
    rng = random.Random(5)
    delays = [exponential_delay(3, 1.0, 9.0, jitter=0.25, rng=rng) for _ in range(200)]
    assert all(6.0 <= d <= 9.0 for d in delays)
    assert max(delays) == 9.0  # 8 * 1.25 would pass the cap: it is cut to it
    assert len({round(d, 6) for d in delays}) > 50


@pytest.mark.parametrize(
    "kind",
    [
        ErrorKind.INVALID_PARAMS,
        ErrorKind.UNKNOWN_KIND,
        ErrorKind.QUERY_ERROR,
        ErrorKind.ACCESS_DENIED,
        ErrorKind.UNSUPPORTED_FORMAT,
        ErrorKind.TOO_LARGE,
        ErrorKind.STORAGE_REJECTED,
    ],
)
def test_permanent_errors_never_retry(kind: ErrorKind) -> None:
    assert isinstance(decide(kind, 1, 5, BackoffPolicy()), Fail)


@pytest.mark.parametrize(
    "kind",
    [
        ErrorKind.STORAGE_UNAVAILABLE,
        ErrorKind.DATABASE_UNAVAILABLE,
        ErrorKind.LEASE_EXPIRED,
        ErrorKind.TIMEOUT,
        ErrorKind.INTERNAL,
    ],
)
def test_retryable_errors_retry_until_attempts_are_spent(kind: ErrorKind) -> None:
    policy = BackoffPolicy(jitter=0)
    assert decide(kind, 1, 3, policy) == Retry(10)
    assert decide(kind, 2, 3, policy) == Retry(20)
    last = decide(kind, 3, 3, policy)
    assert isinstance(last, Fail)
    assert "3 of 3" in last.reason


def test_heartbeat_renews_three_times_a_lease_each_renewal_bounded() -> None:
    assert heartbeat_interval(9) == 3
    assert renewal_timeout(30) == 5
    # Beats carry progress too: never further apart than a few seconds.
    assert heartbeat_interval(30) == 5
    assert heartbeat_interval(3600) == 5


def test_lease_counts_as_lost_once_half_of_it_passed_without_a_renewal() -> None:
    assert not lease_lost_locally(renewal_sent=100.0, now=114.9, lease_seconds=30)
    assert lease_lost_locally(renewal_sent=100.0, now=115.0, lease_seconds=30)


def test_a_job_is_stopped_before_its_lease_can_run_out() -> None:
    """Beats at most interval + timeout apart always notice in time."""
    lease = 30.0
    gap = heartbeat_interval(lease) + renewal_timeout(lease)
    for offset in (0.0, 0.1, 3.7, gap - 0.01):
        beat = 100.0 + offset
        while not lease_lost_locally(100.0, beat, lease):
            beat += gap
        assert beat < 100.0 + lease
