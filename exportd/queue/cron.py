"""Cron expressions in a schedule's own time zone: reading one, and its occurrences.

Pure: every function takes the instants it needs and returns instants in UTC.
The expression is read by ``cronsim``, in the schedule's zone, with Debian
cron's rules for the hours daylight saving time skips or repeats:

- a job at a fixed time that falls in a skipped hour (02:30 on the day the
  clocks go from 02:00 to 03:00) runs at the first minute after the gap
  (03:00), once;
- a job at a fixed time that falls in a repeated hour (02:30 on the day the
  clocks go from 03:00 back to 02:00) runs once, at its first pass;
- a job that runs every hour or more often ("0 * * * *", "*/15 * * * *")
  keeps running on the elapsed clock, in both passes of a repeated hour.

So "every Monday 08:00 Europe/Zurich" (``0 8 * * 1``) is 08:00 on the wall
clock the whole year: 07:00 UTC in winter, 06:00 UTC in summer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from exportd import limits

# The names cron gives its common schedules, as the five fields they mean.
NAMED: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# The shape of an IANA zone name; the table's schedules_timezone_bytes holds
# the same pattern. The pattern alone does not refuse every POSIX zone string:
# 'UTC+3' (which Postgres reads as UTC-3) matches it, and the table takes it.
# zone_problem refuses it as a name the tz database does not list, so the API
# answers 400 and the scheduler fails such a row alone, saying so.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")

CatchUp = Literal["latest", "none"]


class CronError(ValueError):
    """A cron expression or a time zone that cannot be used; the message says why."""


@dataclass(frozen=True)
class CronSpec:
    """A schedule's cron expression (five fields, an @name already expanded) in its zone."""

    fields: str
    zone: ZoneInfo


# Files of the tz database that are no zone of their own: the machine's local
# zone (which differs from one server to the next) and the database's internals.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@cache
def known_zones() -> frozenset[str]:
    """The zone names a schedule may use. Read from the tz database once (it
    lists some 600 files); Postgres knows each of them too (a test holds it)."""
    return frozenset(available_timezones()) - _NOT_ZONES


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not a time zone a schedule may use, or None.

    An IANA name (``Europe/Zurich``) of the tz database Python reads
    (``zoneinfo.available_timezones``); never ``localtime`` or a POSIX string.
    """
    if problem := limits.identifier_problem(name, limits.SCHEDULE_TIMEZONE_MAX_BYTES):
        return problem
    if not _ZONE_NAME.fullmatch(name) or name not in known_zones():
        return "must be an IANA time zone name, e.g. Europe/Zurich, America/New_York or UTC"
    return None


def cron_fields(expression: str) -> str:
    """The five fields ``expression`` means (an @name expanded); CronError when it is
    not five fields or an @name. The fields themselves are read by ``parse``."""
    text = expression.strip()
    if text.startswith("@"):
        fields = NAMED.get(text.lower())
        if fields is None:
            raise CronError(f"unknown name {text[:32]!r}; one of {', '.join(NAMED)}")
        return fields
    if len(text.split()) != 5:
        raise CronError(
            "must be five fields (minute hour day-of-month month day-of-week), "
            "e.g. '0 8 * * 1', or one of " + ", ".join(NAMED)
        )
    return " ".join(text.split())


def parse(expression: str, timezone: str) -> CronSpec:
    """``expression`` in ``timezone``, checked: CronError says what is wrong.

    An expression that never occurs (``0 0 31 2 *``) is refused here.
    """
    if problem := limits.identifier_problem(expression, limits.SCHEDULE_CRON_MAX_BYTES):
        raise CronError(problem)
    fields = cron_fields(expression)
    if problem := zone_problem(timezone):
        raise CronError(f"timezone {problem}")
    try:
        spec = CronSpec(fields, ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"timezone is unknown: {exc}") from None
    next_after(spec, datetime(2000, 1, 1, tzinfo=UTC))  # reads every field, or raises
    return spec


def next_after(spec: CronSpec, instant: datetime) -> datetime:
    """The first occurrence of ``spec`` strictly after ``instant`` (aware), in UTC,
    to the second. CronError when a field cannot be read or nothing occurs."""
    local = instant.astimezone(spec.zone)
    try:
        following = next(CronSim(spec.fields, local))
    except CronSimError as exc:
        raise CronError(_reason(spec.fields, str(exc) or "cannot be read")) from None
    except StopIteration:
        raise CronError("never occurs (no match within 50 years)") from None
    return following.astimezone(UTC)


def _reason(fields: str, message: str) -> str:
    """cronsim's ``message`` about ``fields``, said for a person: cronsim calls a
    day that no month given has (``0 0 30 2 *``) a bad day of the month."""
    parts = fields.split()
    if message == "Bad day-of-month" and len(parts) == 5:
        try:
            CronSim(" ".join([*parts[:3], "*", parts[4]]), datetime(2000, 1, 1))
        except CronSimError:
            return message
        return "never occurs: no month it names has that day of the month"
    return message


@dataclass(frozen=True)
class Plan:
    """What one due schedule does now: make a job for ``occurrence`` (None: make
    none), and wait for ``next_run_at``, which is always after ``now``."""

    occurrence: datetime | None
    next_run_at: datetime


def plan(
    spec: CronSpec,
    due_at: datetime | None,
    now: datetime,
    catch_up: CatchUp,
    grace: timedelta,
) -> Plan:
    """The decision for a schedule whose next run was ``due_at`` (None: never set).

    ``next_run_at`` is the first occurrence after ``now``: however many
    occurrences passed since ``due_at`` (no daemon ran, the schedule was
    unreadable), they make at most one job, never one each.

    - ``due_at`` None (a row the application inserted without it): no job;
      the schedule starts from its next occurrence.
    - ``catch_up="latest"``: one job, for ``due_at`` (the first occurrence
      that passed), however late.
    - ``catch_up="none"``: a job only for an occurrence that passed at most
      ``grace`` ago (``due_at`` when it is that recent, else the latest that
      is); older ones are skipped.
    """
    following = next_after(spec, now)
    if due_at is None:
        return Plan(None, following)
    if catch_up == "latest" or due_at >= now - grace:
        return Plan(due_at, following)
    # The first occurrence at or after the start of the grace period, if it has passed.
    recent = next_after(spec, now - grace - timedelta(seconds=1))
    return Plan(recent if recent <= now else None, following)


def occurrence_key(schedule_id: object, occurrence: datetime) -> str:
    """The dedupe key of the job a schedule makes for ``occurrence``:
    ``schedule:<id>:<UTC instant>``, 66 bytes, well within
    ``limits.DEDUPE_KEY_MAX_BYTES``."""
    instant = occurrence.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"schedule:{schedule_id}:{instant}"
