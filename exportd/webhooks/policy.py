"""What one attempt's answer means, and when to try again. Pure.

- 2xx: delivered.
- 408, 429 and 5xx, a timeout, a refused or lost connection: the receiver
  or the path to it is unwell for now; retried with exponential backoff and
  jitter (``queue.backoff.exponential_delay``) for up to the retry period,
  counted from the first attempt. A 429's ``Retry-After`` is honoured within
  ``[base, cap]``.
- 3xx: redirects are not followed (a signed event must not be carried to an
  address nobody configured). It is retried like an outage: the target is
  misconfigured or moving, and a retry goes to the URL configured *then*, so
  an operator who fixes ``EXPORTD_WEBHOOK_URL`` within the retry period loses
  no event.
- Any other 4xx: the receiver refused this event (bad signature, unknown
  endpoint, a validation error): the delivery fails at once; sending the same
  bytes again cannot help.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from exportd.queue.backoff import exponential_delay

# Retry-After's delay-seconds: ASCII digits only (RFC 9110 DIGIT). str.isdigit()
# also accepts "²" or Arabic-Indic digits, which float() refuses or reads as a number no
# receiver meant.
_DELAY_SECONDS = re.compile(r"[0-9]+", re.ASCII)


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    period_seconds: float = 86400.0  # retried for this long after the first attempt
    jitter: float = 0.2


@dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status, or none (``error`` says why)."""

    status: int | None
    error: str | None = None
    retry_after: str | None = None  # the Retry-After header, as sent


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class RetryLater:
    delay_seconds: float
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str


Decision = Delivered | RetryLater | GiveUp


def is_retryable(answer: Answer) -> bool:
    """Whether trying again later may succeed (see the module's list)."""
    status = answer.status
    if status is None:
        return True
    return status in (408, 429) or 300 <= status < 400 or status >= 500 or status < 200


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (seconds, or an HTTP date) in seconds from ``now``;
    None when absent or unreadable. Never raises, whatever the receiver wrote."""
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def decide(
    answer: Answer,
    attempt: int,
    retrying_seconds: float,
    policy: RetryPolicy,
    now: datetime,
    rng: random.Random | None = None,
) -> Decision:
    """The outcome of attempt ``attempt`` (from 1) of a delivery first tried
    ``retrying_seconds`` ago."""
    status = answer.status
    if status is not None and 200 <= status < 300:
        return Delivered()
    what = answer.error or f"HTTP {status}"
    if not is_retryable(answer):
        return GiveUp(f"{what}: the receiver refused the event; not retried")
    delay = exponential_delay(
        attempt - 1, policy.base_seconds, policy.max_seconds, jitter=policy.jitter, rng=rng
    )
    if status == 429:
        asked = retry_after_seconds(answer.retry_after, now)
        if asked is not None:
            delay = min(max(asked, policy.base_seconds), policy.max_seconds)
    if retrying_seconds + delay > policy.period_seconds:
        return GiveUp(
            f"{what}; gave up after {attempt} attempt(s) over "
            f"{retrying_seconds:.0f} s (retry period {policy.period_seconds:.0f} s)"
        )
    return RetryLater(delay, what)
