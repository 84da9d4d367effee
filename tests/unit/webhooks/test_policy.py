"""What an attempt's answer means, and when to try again: pure decisions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from exportd.webhooks.policy import (
    Answer,
    Delivered,
    GiveUp,
    RetryLater,
    RetryPolicy,
    decide,
    is_retryable,
    retry_after_seconds,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(base_seconds=5, max_seconds=3600, period_seconds=86400, jitter=0)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert decide(Answer(status), 1, 0, POLICY, NOW) == Delivered()


@pytest.mark.parametrize(
    ("answer", "retried"),
    [
        (Answer(None, "no answer within 10 s"), True),
        (Answer(None, "ClientConnectorError: refused"), True),
        (Answer(500), True),
        (Answer(503), True),
        (Answer(429), True),
        (Answer(408), True),
        (Answer(301), True),
        (Answer(302), True),
        (Answer(400), False),
        (Answer(401), False),
        (Answer(404), False),
        (Answer(410), False),
        (Answer(422), False),
    ],
)
def test_outages_and_redirects_are_retried_and_refusals_are_not(
    answer: Answer, retried: bool
) -> None:
    assert is_retryable(answer) is retried
    decision = decide(answer, 1, 0, POLICY, NOW)
    assert isinstance(decision, RetryLater if retried else GiveUp)


def test_backoff_doubles_up_to_its_cap_with_bounded_jitter() -> None:
    delays = [decide(Answer(500), n, 0, POLICY, NOW) for n in (1, 2, 3, 12, 40)]
    assert [d.delay_seconds for d in delays if isinstance(d, RetryLater)] == [
        5,
        10,
        20,
        3600,
        3600,
    ]
    jittered = RetryPolicy(base_seconds=10, max_seconds=3600, jitter=0.2)
    rng = random.Random(7)
    for _ in range(200):
        d = decide(Answer(None, "x"), 1, 0, jittered, NOW, rng)
        assert isinstance(d, RetryLater)
        assert 8 <= d.delay_seconds <= 12


def test_retries_end_with_the_retry_period() -> None:
    assert isinstance(decide(Answer(500), 5, 86400 - 81, POLICY, NOW), RetryLater)
    gave_up = decide(Answer(500), 5, 86400 - 79, POLICY, NOW)
    assert isinstance(gave_up, GiveUp)
    assert "gave up after 5 attempt(s)" in gave_up.reason


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 5.0),  # at least the base
        ("999999", 3600.0),  # at most the cap
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("tomorrow-ish", 5.0),  # unreadable: the backoff
        (None, 5.0),
    ],
)
def test_429_honours_retry_after_within_bounds(header: str | None, expected: float) -> None:
    decision = decide(Answer(429, retry_after=header), 1, 0, POLICY, NOW)
    assert isinstance(decision, RetryLater)
    assert decision.delay_seconds == pytest.approx(expected)


def test_retry_after_parsing() -> None:
    assert retry_after_seconds(" 30 ", NOW) == 30.0
    assert retry_after_seconds(format_datetime(NOW - timedelta(hours=1), usegmt=True), NOW) == 0.0
    assert retry_after_seconds("", NOW) is None


@pytest.mark.parametrize(
    "header", ["²", "³⁰", "1²", "\u0663\u0660x", "1e9", "-5", "inf", "NaN", "9" * 5000]
)
def test_retry_after_of_any_text_never_raises(header: str) -> None:
    # A receiver writes the header: a Unicode digit that str.isdigit() accepts
    # and float() refuses ("²") raised ValueError out of decide(), crashing the
    # delivery's task before its outcome was recorded, at every lease, for
    # ever (never past the retry period) and holding up every later event of
    # the job.
    seconds = retry_after_seconds(header, NOW)
    assert seconds is None or seconds >= 0.0
    decision = decide(Answer(429, retry_after=header), 1, 0, POLICY, NOW)
    assert isinstance(decision, RetryLater)
    assert POLICY.base_seconds <= decision.delay_seconds <= POLICY.max_seconds
