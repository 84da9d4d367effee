"""Paused kinds: the rows of ``exportd.paused_kinds``, which the claim reads.

A paused kind's pending jobs are claimed by no daemon (the claim statement
leaves them out, see ``claim`` in sql/queries.sql); jobs already running
finish. The state is a table, so every daemon sees a pause at its next claim
and it outlives restarts. The kind ``ALL_KINDS`` ('*') pauses every kind; it
can never name a kind, whose names match ``[a-z][a-z0-9_-]*`` (the table
holds every other row to that).

``state_of`` (pure) says whether one kind is paused, and by which pause; the
rest reads and writes the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from exportd import limits
from exportd.queue.sql import queries

ALL_KINDS = "*"
# The table's paused_kinds_kind_name: a kind's name (exportd.definitions.loader's
# KIND_NAME_RE, which the queue does not import), or ALL_KINDS.
_KIND_NAME = re.compile(r"[a-z][a-z0-9_-]*")
# A pause lifted between the insert that found it and the read of it: try again.
_TRIES = 3


@dataclass(frozen=True)
class Pause:
    """One row: ``kind`` (a kind's name, or ALL_KINDS) paused since ``paused_at`` by
    ``paused_by``, for ``reason`` (None: none given)."""

    kind: str
    paused_at: datetime
    paused_by: str
    reason: str | None

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> Pause:
        return cls(str(row["kind"]), row["paused_at"], str(row["paused_by"]), row["reason"])


@dataclass(frozen=True)
class PauseState:
    """Whether ``kind`` is claimed: its own pause, and the pause of every kind."""

    kind: str
    own: Pause | None
    every_kind: Pause | None

    @property
    def paused(self) -> bool:
        return self.own is not None or self.every_kind is not None

    @property
    def effective(self) -> Pause | None:
        """The pause that holds the kind: its own if it has one, else every kind's."""
        return self.own or self.every_kind


def state_of(kind: str, pauses: Iterable[Pause]) -> PauseState:
    """``kind``'s state among ``pauses`` (all the rows of the table)."""
    by_kind = {p.kind: p for p in pauses}
    return PauseState(kind, by_kind.get(kind), by_kind.get(ALL_KINDS))


class PauseRefused(ValueError):
    """A pause whose values the table would refuse; the message says each problem."""


def pause_problems(kind: str, paused_by: str, reason: str | None) -> list[str]:
    """What the table would refuse in a pause, each as a sentence naming the field.

    ``kind`` a kind's name (``[a-z][a-z0-9_-]*``, at most ``KIND_MAX_BYTES``) or
    ALL_KINDS; ``paused_by`` and ``reason`` (when given) non-empty, free of
    control characters and within their bounds in bytes (``exportd.limits``).
    """
    found: list[str] = []
    if kind != ALL_KINDS and not (
        _KIND_NAME.fullmatch(kind) and len(kind.encode()) <= limits.KIND_MAX_BYTES
    ):
        found.append(
            f"kind must match [a-z][a-z0-9_-]* within {limits.KIND_MAX_BYTES} bytes, "
            f"or be {ALL_KINDS!r} for every kind"
        )
    if problem := limits.identifier_problem(paused_by, limits.PAUSED_BY_MAX_BYTES):
        found.append(f"paused_by {problem}")
    if reason is not None and (
        problem := limits.identifier_problem(reason, limits.PAUSE_REASON_MAX_BYTES)
    ):
        found.append(f"reason {problem}")
    return found


async def pause(
    pool: asyncpg.Pool, kind: str, paused_by: str, reason: str | None
) -> tuple[Pause, bool]:
    """Pause ``kind`` (ALL_KINDS: every kind); returns its pause and whether it is
    new. Pausing a paused kind changes nothing: the first pause, its time,
    author and reason, stays. Raises PauseRefused for values the table refuses
    (``pause_problems``)."""
    if wrong := pause_problems(kind, paused_by, reason):
        raise PauseRefused("; ".join(wrong))
    q = queries()
    for _ in range(_TRIES):
        try:
            row = await pool.fetchrow(q["pause_kind"], kind, paused_by, reason)
        except (asyncpg.CheckViolationError, asyncpg.DataError) as exc:
            raise PauseRefused(f"the table refused the pause: {exc}") from exc
        if row is not None:
            return Pause.from_record(row), True
        # Paused already: the statement's snapshot may predate that pause, so
        # it is read by a statement of its own.
        row = await pool.fetchrow(q["pause_of"], kind)
        if row is not None:
            return Pause.from_record(row), False
    raise PauseRefused(f"the pause of {kind!r} kept being lifted while it was set; retry")


async def resume(pool: asyncpg.Pool, kind: str) -> Pause | None:
    """Lift ``kind``'s own pause (ALL_KINDS: the pause of every kind only); returns
    the pause lifted, or None when there was none. Idle daemons are woken (the
    table's trigger notifies exportd_jobs)."""
    row = await pool.fetchrow(queries()["resume_kind"], kind)
    return None if row is None else Pause.from_record(row)


async def resume_all(pool: asyncpg.Pool) -> list[Pause]:
    """Lift every pause: of every kind, and each kind's own; returns those lifted."""
    rows = await pool.fetch(queries()["resume_all_kinds"])
    return sorted((Pause.from_record(r) for r in rows), key=lambda p: p.kind)


async def pauses(pool: asyncpg.Pool) -> list[Pause]:
    """Every pause, by kind (ALL_KINDS first: '*' sorts before letters)."""
    return [Pause.from_record(r) for r in await pool.fetch(queries()["paused_kinds"])]
