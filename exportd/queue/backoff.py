"""When a failed job runs again: a pure function of plain values.

Exponential with a cap, like pgqueuer's ``min(initial * 2**n, max)``, with
proportional jitter so that jobs failed by one outage do not all return at
the same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from exportd.errors import ErrorKind, is_retryable


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
        exponent = min(max(attempt, 1) - 1, 62)
        nominal = min(self.base_seconds * (2.0**exponent), self.max_seconds)
        draw = (rng or random).uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return min(nominal * draw, self.max_seconds)


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
