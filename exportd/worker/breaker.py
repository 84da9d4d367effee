"""The storage circuit breaker: stop claiming jobs while S3 is down.

Without it, an S3 outage fails every job the daemon claims, one attempt
each, until their attempts are spent and they fail for good: an outage
turned into lost exports. The breaker counts consecutive storage outages
(``errors.STORAGE_OUTAGES``: S3 unreachable, 5xx, throttling, a missing
bucket). A job whose own request S3 refused (``storage_rejected``,
``too_large``, ``access_denied``) says nothing about the store: it
neither counts nor resets, so no tenant's input can stop the others. At the
threshold it opens: the worker stops claiming. A probe of the bucket, run
by the daemon while the breaker is open, closes it again, as does any
export that completes meanwhile.

Attempts an outage can spend, per daemon: the jobs running when it began
plus those claimed before the breaker opened, at most
``threshold + concurrency - 1``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from exportd.errors import STORAGE_OUTAGES, ErrorKind


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True)
class BreakerStatus:
    """The breaker as the dashboard shows it: ``state``, the consecutive storage
    ``failures`` counted towards ``threshold``, the last failure's ``reason``
    (None once closed), for how many seconds it has been open (None: closed),
    and how many times it has opened since the daemon started."""

    state: BreakerState
    failures: int
    threshold: int
    reason: str | None
    open_seconds: float | None
    times_opened: int


class StorageBreaker:
    def __init__(self, threshold: int, clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self._clock = clock
        self._failures = 0
        self.state = BreakerState.CLOSED
        self.reason: str | None = None
        self.opened_at: float | None = None
        self.times_opened = 0
        # Set while open: the daemon's probe waits on it.
        self.opened = asyncio.Event()

    @property
    def allows_claims(self) -> bool:
        return self.state is BreakerState.CLOSED

    def record(self, kind: ErrorKind | None, message: str = "") -> bool:
        """A job's outcome (None: completed). Returns True when this opened the breaker."""
        if kind is None:
            self.record_success()
            return False
        if kind not in STORAGE_OUTAGES:
            return False  # not a store outage: says nothing either way
        return self.record_failure(message)

    def record_failure(self, message: str) -> bool:
        self._failures += 1
        self.reason = message
        if self.state is BreakerState.CLOSED and self._failures >= self.threshold:
            self.state = BreakerState.OPEN
            self.opened_at = self._clock()
            self.times_opened += 1
            self.opened.set()
            return True
        return False

    def record_success(self) -> bool:
        """Storage answered. Returns True when this closed the breaker."""
        was_open = self.state is BreakerState.OPEN
        self._failures = 0
        self.state = BreakerState.CLOSED
        self.reason = None
        self.opened_at = None
        self.opened.clear()
        return was_open

    def status(self) -> BreakerStatus:
        """A copy of the breaker's state now (it lives in this process only)."""
        opened = self.opened_at
        return BreakerStatus(
            self.state,
            self._failures,
            self.threshold,
            self.reason,
            None if opened is None else max(0.0, self._clock() - opened),
            self.times_opened,
        )

    def readiness(self) -> str:
        """The breaker as a /readyz check: "ok", or why claims are stopped."""
        if self.allows_claims:
            return "ok"
        return f"open after {self._failures} storage failures, claims stopped: {self.reason}"
