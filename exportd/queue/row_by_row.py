"""One bad row never fails a batch: a statement over many rows, retried row by row.

A statement that changes many rows fails as a whole when one of them makes it
fail: an application's trigger that raises, a constraint that a row written
before it cannot meet, a payload a trigger cannot send. The queue's batch
statements (the claim, heartbeats, the completion batch, the reaper,
retention, the purge) therefore run through ``per_row_on_failure``: the
batch runs under a savepoint, and when it fails for a reason of the rows
(not an outage), it runs again one row at a time, each under a savepoint of
its own, so that every row that can be processed is, and each row that
cannot is reported with its error. An outage (connection lost, a
serialization failure, a statement timeout) is raised as it is: retrying
row by row could not help, and the caller's own retry applies.

``Passed`` remembers, in one process and up to a bound, rows that could not
be processed even alone, so that a periodic statement passes over them
rather than spending every batch on them.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from exportd.database import is_unavailable
from exportd.errors import bounded_message

T = TypeVar("T")
R = TypeVar("R")


def is_row_error(exc: BaseException) -> bool:
    """True when ``exc`` is Postgres refusing a statement for what it touched
    (a raise, a constraint, a data error), as opposed to an outage or a
    timeout, which no row-by-row retry can help."""
    return isinstance(exc, asyncpg.PostgresError) and not is_unavailable(exc)


def row_error(what: str, exc: Exception) -> str:
    """The message of a row that a batch statement could not process, bounded
    (``errors.bounded_message``): ``what``, then the error's class and text."""
    return bounded_message(f"{what}: {exc.__class__.__name__}: {exc}")


async def per_row_on_failure(
    conn: asyncpg.Connection,
    items: Sequence[T],
    run: Callable[[Sequence[T]], Awaitable[list[R]]],
) -> tuple[list[R], list[tuple[T, Exception]]]:
    """``run(items)`` under a savepoint; on a row error, ``run([item])`` for each.

    ``conn`` may be inside a transaction (each call then takes a savepoint)
    or outside one, where ``run`` must send a single statement (each call is
    then atomic by itself). Returns the
    results of every successful call, concatenated, and the items that
    failed alone with their errors. Errors other than row errors
    (``is_row_error``) propagate.
    """
    if not items:
        return [], []
    try:
        return await _atomically(conn, run, items), []
    except Exception as exc:
        if not is_row_error(exc):
            raise
        if len(items) == 1:
            return [], [(items[0], exc)]
    results: list[R] = []
    failed: list[tuple[T, Exception]] = []
    for item in items:
        try:
            results.extend(await _atomically(conn, run, [item]))
        except Exception as exc:
            if not is_row_error(exc):
                raise
            failed.append((item, exc))
    return results, failed


async def _atomically(
    conn: asyncpg.Connection,
    run: Callable[[Sequence[T]], Awaitable[list[R]]],
    items: Sequence[T],
) -> list[R]:
    # Inside a transaction, a savepoint lets the transaction go on after a
    # failure. Outside one, the single statement ``run`` sends is atomic by
    # itself: no BEGIN and COMMIT on the hot path (claims, heartbeats).
    if conn.is_in_transaction():
        async with conn.transaction():
            return await run(items)
    return await run(items)


class Passed:
    """Ids a periodic statement passes over: rows that failed even alone.

    Bounded (the oldest entry goes first), and in memory only: a restart
    tries each row again, and the row's own fix (the application dropping
    its trigger, say) lets the next process handle it.
    """

    def __init__(self, limit: int = 1000) -> None:
        self._ids: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._limit = limit

    def add(self, item_id: uuid.UUID) -> None:
        self._ids[item_id] = None
        self._ids.move_to_end(item_id)
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def ids(self) -> list[uuid.UUID]:
        return list(self._ids)
