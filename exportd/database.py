"""Postgres connections and the classification of their errors."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import asyncpg
import structlog

from exportd.errors import ErrorKind, ExportError
from exportd.queue.backoff import exponential_delay
from exportd.redaction import redact_text

# SQLSTATE classes that describe an outage or an accident of timing rather
# than the query: connection exceptions (08), insufficient resources (53: too
# many connections, out of memory or disk), operator intervention (57: an
# admin shutdown, "cannot connect now" during start-up or recovery, a
# statement cancelled at its timeout), transaction rollback (40: a
# serialization failure, a deadlock), system errors (58), internal errors (XX).
_UNAVAILABLE_CLASSES = frozenset({"08", "53", "57", "40", "58", "XX"})


def _int_or_digits(text: str) -> int | str:
    # Python refuses to turn more than 4,300 digits into an int
    # (sys.get_int_max_str_digits), and an application may store such a
    # number (1e5000 is a valid jsonb value of 5,001 digits).
    try:
        return int(text)
    except ValueError:
        return text


def _float_or_digits(text: str) -> float | str:
    # A number past a float's range would become inf, which no JSON document
    # can hold: such a number keeps its digits instead.
    value = float(text)
    return value if math.isfinite(value) else text


def decode_json(text: str) -> Any:
    """A json/jsonb value from Postgres as Python values; never raises on what
    Postgres stored. Numbers no int or float can hold (over 4,300 digits, past
    a float's range) come back as their digits, a ``str``, so that one row an
    application wrote never fails a read of many rows or a document built
    from it."""
    return json.loads(text, parse_int=_int_or_digits, parse_float=_float_or_digits)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb arrives as Python values, not as text to parse at every call site.
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, schema="pg_catalog", encoder=json.dumps, decoder=decode_json
        )


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool ``reset`` that leaves the session as it is.

    asyncpg's default reset runs one more statement (UNLISTEN, RESET ALL,
    advisory unlocks...) each time a connection goes back to the pool, which
    doubles the round trips of a one-statement request. Only for pools whose
    statements leave no session state behind (the daemon's queue and API
    pools: their settings and advisory locks are transaction-scoped); an open transaction
    is still rolled back by asyncpg itself before this is called.
    """


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 4, **kw: Any) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kw
    )
    return pool


async def connect(dsn: str, **kw: Any) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(dsn, **kw)
    await _init_connection(conn)
    return conn


# A lost connection, however asyncpg reports it: a socket error, the
# InterfaceError of a closed connection (ConnectionDoesNotExistError among
# them), a client-side deadline. InternalClientError is what asyncpg raises
# when a connection the server terminated in the middle of an operation (a
# COPY during a restart, say) is used again: its protocol is still in the
# interrupted operation's state. It is an outage, retried like one, not a crash.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    TimeoutError,
)
# Everything Postgres or the connection to it can raise.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, *CONNECTION_ERRORS)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unavailable for now, rather than that
    the statement is wrong: the one decision every caller makes the same way.

    True for a lost or refused connection (``CONNECTION_ERRORS``) and for a
    Postgres error of an outage's SQLSTATE class (``08`` connection, ``53``
    resources, ``57`` operator intervention and statement timeouts, ``40``
    serialization and deadlocks, ``58`` system, ``XX`` internal). False for
    a statement Postgres refuses for what it says or touches (syntax, a
    missing column, a constraint, bad data) and for anything that is not the
    database's. The worker retries what is True (``classify_pg_error``), the
    API answers it 503 with Retry-After, and a batch is not retried row by
    row for it (``exportd.queue.row_by_row``).
    """
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "")[:2] in _UNAVAILABLE_CLASSES
    return isinstance(exc, CONNECTION_ERRORS)


def classify_pg_error(exc: BaseException, what: str) -> ExportError:
    """An ExportError for a failure while running ``what`` (e.g. "kind 'orders'").

    TIMEOUT for a statement Postgres cancelled; DATABASE_UNAVAILABLE for the
    rest of what ``is_unavailable`` says (both retried); QUERY_ERROR for any
    other Postgres error (permanent); INTERNAL for anything else.
    """
    if isinstance(exc, asyncpg.QueryCanceledError):
        return ExportError(
            ErrorKind.TIMEOUT,
            f"{what} ran longer than its statement timeout and was cancelled by Postgres",
        )
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        detail = f"{exc.__class__.__name__} [{sqlstate}]: {exc}"
        if is_unavailable(exc):
            return ExportError(ErrorKind.DATABASE_UNAVAILABLE, f"{what}: database error {detail}")
        return ExportError(
            ErrorKind.QUERY_ERROR,
            f"{what}: the query failed with {detail}; fix the definition and enqueue again",
        )
    if is_unavailable(exc):
        return ExportError(
            ErrorKind.DATABASE_UNAVAILABLE,
            f"{what}: lost the database connection ({exc.__class__.__name__}: {exc})",
        )
    return ExportError(ErrorKind.INTERNAL, f"{what}: {exc.__class__.__name__}: {exc}")


async def create_pool_when_reachable(
    dsn: str, what: str, wait_seconds: float, *, max_size: int, **kw: Any
) -> asyncpg.Pool:
    """``create_pool``, retried with backoff for up to ``wait_seconds``.

    A database that is briefly away (restarting, failing over, not yet up
    when the whole stack boots) is waited for rather than left to the
    supervisor's restart loop: the daemon then starts the moment it can. A
    database still away after the wait is a configuration problem or a long
    outage, which an exit and a supervisor's restart make visible: the last
    error is raised.
    """
    log = structlog.get_logger()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    failures = 0
    while True:
        try:
            return await create_pool(dsn, min_size=1, max_size=max_size, **kw)
        except Exception as exc:
            failures += 1
            left = deadline - loop.time()
            if left <= 0:
                raise
            delay = min(exponential_delay(failures, 0.5, 10.0), left)
            log.warning(
                "database_unreachable",
                database=what,
                # The driver may quote the DSN: its secrets never reach a log.
                error=redact_text(repr(exc), dsn),
                retry_in=round(delay, 2),
                gives_up_in=round(left, 1),
            )
            await asyncio.sleep(delay)
