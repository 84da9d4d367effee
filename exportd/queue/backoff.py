"""How long to wait before trying again: pure functions of plain values.

``exponential_delay`` is the one exponential backoff of exportd, like
pgqueuer's ``min(initial * 2**n, max)``: a failed job's next attempt
(``BackoffPolicy``, with proportional jitter so that jobs failed by one
outage do not all return at the same second), the worker's claim after a
failed claim, the listener's reconnection, and the daemon's wait for its
database at start-up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from exportd.errors import ErrorKind, is_retryable

# Past this many doublings every delay is at its cap (2**64 times any base of
# a nanosecond or more is centuries), and the exponent of a days-long outage's
# failure count would overflow a float.
_MAX_DOUBLINGS = 64


def exponential_delay(
    doublings: int,
    base: float,
    cap: float,
    *,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait: ``base * 2**doublings``, at most ``cap``.

    ``doublings`` below 0 count as 0. With ``jitter`` (a fraction, 0.2 for
    ±20 %), the delay is drawn uniformly from ``[d * (1 - jitter), d * (1 +
    jitter)]`` with ``rng`` (the module's generator when None) and still
    never exceeds ``cap``; without, nothing is drawn.
    """
    nominal = min(base * 2.0 ** min(max(doublings, 0), _MAX_DOUBLINGS), cap)
    if not jitter:
        return nominal
    draw = (rng or random).uniform(1.0 - jitter, 1.0 + jitter)
    return min(nominal * draw, cap)


@dataclass(frozen=True)
class BackoffPolicy:
    base_seconds: float = 10.0
    max_seconds: float = 3600.0
    # A delay is drawn uniformly from [d * (1 - jitter), d * (1 + jitter)].
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds before attempt ``attempt + 1``, after attempt ``attempt`` failed.

        Attempt 1 waits about ``base``, attempt 2 about ``2 * base``, and so
        on up to ``max``; the jittered value never exceeds ``max``.
        """
        return exponential_delay(
            attempt - 1, self.base_seconds, self.max_seconds, jitter=self.jitter, rng=rng
        )


@dataclass(frozen=True)
class Retry:
    delay_seconds: float


@dataclass(frozen=True)
class Fail:
    reason: str


def decide(
    kind: ErrorKind,
    attempts: int,
    max_attempts: int,
    policy: BackoffPolicy,
    rng: random.Random | None = None,
) -> Retry | Fail:
    """Retry a retryable failure while attempts remain; fail otherwise."""
    if not is_retryable(kind):
        return Fail("permanent error, not retried")
    if attempts >= max_attempts:
        return Fail(f"gave up after {attempts} of {max_attempts} attempts")
    return Retry(policy.delay(attempts, rng))
