"""Per-kind quotas: how many exports one owner may request of a kind in a window.

A kind's definition may say ``[kinds.NAME.quota] max = 1, per = "P1D"``. The
window slides: a job counts against its owner and kind when it was created
within ``per`` before the job being decided (ordered by ``(created_at, id)``,
so every daemon decides the same), whatever its state, except jobs that were
themselves refused for quota (``error_kind = 'quota_exceeded'``); a job not
decided yet counts as its own decision, by the same rule, says (``retry_at``),
so the order in which jobs are decided never changes a decision. The queue
reads the rows (``exportd.queue.enqueue`` for ``POST /v1/jobs`` and ``exportd
enqueue``, ``PgJobStore.quota_retry_at`` for rows inserted directly); the
rule is the pure functions here, shared by the definitions, the queue, the
worker, the API and the command line.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import TypeAdapter, ValidationError

# A quota's window: at least a second, at most a year (ISO 8601's P1Y is read as
# 365 days, P1M as 30). Longer is a typo rather than a policy, and a window can
# only see the history the daemon keeps (EXPORTD_HISTORY_RETENTION).
PER_MIN = timedelta(seconds=1)
PER_MAX = timedelta(days=366)
# More exports than this in one window is no quota worth a count.
MAX_MAX = 1_000_000
QUOTA_KEYS = frozenset({"max", "per"})

_DURATION = TypeAdapter(timedelta)


@dataclass(frozen=True)
class Quota:
    """At most ``max`` jobs of one owner and kind created within ``per``."""

    max: int
    per: timedelta
    # The window as written in the definition ("P1D"), shown to callers.
    per_text: str = ""

    def describe(self) -> dict[str, object]:
        """The quota as ``GET /v1/kinds`` shows it: ``max``, ``per`` (ISO 8601)
        and ``per_seconds``."""
        return {
            "max": self.max,
            "per": self.per_text or iso_duration(self.per),
            "per_seconds": self.per.total_seconds(),
        }


def iso_duration(value: timedelta) -> str:
    """``value`` as an ISO 8601 duration in days and seconds (``P1DT30S``)."""
    days, seconds = value.days, value.seconds + value.microseconds / 1_000_000
    text = f"P{days}D" if days else "P"
    if seconds or not days:
        text += f"T{seconds:g}S"
    return text


def parse_quota(raw: object) -> tuple[Quota | None, list[str]]:
    """A definition's ``quota`` table read: the quota, or None and every problem
    (each a sentence naming its key). ``max`` is a whole number from 1 to
    ``MAX_MAX``; ``per`` an ISO 8601 duration text (``"P1D"``, ``"PT6H"``) from
    ``PER_MIN`` to ``PER_MAX``."""
    if not isinstance(raw, dict):
        return None, ['quota must be a table: [kinds.<kind>.quota] max = 1, per = "P1D"']
    problems = [
        f"quota: unknown key {key!r} (allowed: max, per)" for key in raw if key not in QUOTA_KEYS
    ]
    most = raw.get("max")
    if most is None:
        problems.append("quota: max is required (the number of exports allowed per window)")
    elif isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= MAX_MAX:
        problems.append(f"quota: max must be a whole number from 1 to {MAX_MAX}, got {most!r}")
    per = _per(raw.get("per"), problems)
    if problems:
        return None, problems
    # Every check above passed, so these hold; mypy learns it here.
    assert isinstance(most, int)
    assert per is not None
    return Quota(most, per, str(raw["per"])), []


def _per(raw: object, problems: list[str]) -> timedelta | None:
    hint = 'an ISO 8601 duration such as "P1D", "PT6H" or "P7D"'
    if raw is None:
        problems.append(f"quota: per is required ({hint})")
        return None
    # pydantic also reads numbers and "01:00:00"; a definition says which unit it means.
    if not isinstance(raw, str) or not raw.startswith("P"):
        problems.append(f"quota: per must be {hint}, got {raw!r}")
        return None
    try:
        per = _DURATION.validate_python(raw)
    except ValidationError:
        problems.append(f"quota: per must be {hint}, got {raw!r}")
        return None
    if not PER_MIN <= per <= PER_MAX:
        problems.append(
            f"quota: per must be from 1 second to {PER_MAX.days} days, got {raw!r} ({per})"
        )
        return None
    return per


class Standing(StrEnum):
    """How a job stands towards its kind's quota, as its row says."""

    # Ran, runs, was accepted or ended otherwise: it counts.
    COUNTED = "counted"
    # Refused for quota itself (error_kind = 'quota_exceeded'): it does not count.
    REFUSED = "refused"
    # Pending or processing in its first attempt: perhaps not decided yet (a row
    # inserted directly is decided once claimed). It counts as its own decision
    # says, made by this same rule: the same answer before and after it is made.
    UNDECIDED = "undecided"


def retry_at(
    history: Iterable[tuple[datetime, Standing]], quota: Quota, at: datetime
) -> datetime | None:
    """When a job created at ``at`` is refused by ``quota``, when it can be asked
    for again; None when it is within the quota.

    ``history`` are the jobs of its owner and kind before it, in
    ``(created_at, id)`` order, from at least ``quota.per`` before the earliest
    undecided one (and before ``at``). A job counts when it was created within
    ``quota.per`` before ``at``, unless it was refused for quota; an undecided
    job is decided first, by this rule, from the jobs before it. The job is
    refused when ``quota.max`` jobs count, and can be asked for again once the
    ``max``-th newest of them has left the window.
    """
    counted: list[datetime] = []  # ascending, as history comes
    for created, standing in history:
        if standing is Standing.UNDECIDED:
            refused = len(counted) - bisect_right(counted, created - quota.per) >= quota.max
            standing = Standing.REFUSED if refused else Standing.COUNTED
        if standing is Standing.COUNTED:
            counted.append(created)
    window = counted[bisect_right(counted, at - quota.per) :]
    if len(window) < quota.max:
        return None
    return window[-quota.max] + quota.per


def seconds_until(when: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``when``, rounded up, at least 1: a
    ``Retry-After`` that never tells a caller to come back before it may."""
    return max(1, math.ceil((when - now).total_seconds()))


def refusal_message(kind: str, quota: Quota, when: datetime) -> str:
    """Why a job was refused, and when it can be asked for again (ISO 8601 UTC)."""
    return (
        f"quota of kind {kind!r} exceeded: at most {quota.max} export"
        f"{'s' if quota.max != 1 else ''} per {quota.per_text or iso_duration(quota.per)} "
        f"for one owner; it can be asked for again at {iso_utc(when)}"
    )


def iso_utc(when: datetime) -> str:
    """``when`` in UTC, ISO 8601 with a ``Z``, to the second or finer."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
