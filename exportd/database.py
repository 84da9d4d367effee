"""Postgres connections and the classification of their errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import structlog

from exportd.errors import ErrorKind, ExportError
from exportd.redaction import redact_text

# SQLSTATE classes that describe an outage or an accident of timing rather
# than the query: connection exceptions, insufficient resources, operator
# intervention, transaction rollback (serialization, deadlock), system errors.
_RETRYABLE_CLASSES = frozenset({"08", "53", "57", "40", "58", "XX"})


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb arrives as Python values, not as text to parse at every call site.
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, schema="pg_catalog", encoder=json.dumps, decoder=json.loads
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


def is_connection_error(exc: BaseException) -> bool:
    """Did this fail because the database could not be reached or went away?"""
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "")[:2] in ("08", "57", "53")
    return isinstance(exc, OSError | asyncpg.InterfaceError | TimeoutError)


# A lost connection, however asyncpg reports it. InternalClientError is what
# asyncpg raises when a connection the server terminated in the middle of an
# operation (a COPY during a restart, say) is used again: its protocol is
# still in the interrupted operation's state. It is an outage, retried like
# one, not a crash.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    TimeoutError,
)
# Everything Postgres or the connection to it can raise.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, *CONNECTION_ERRORS)


def classify_pg_error(exc: BaseException, what: str) -> ExportError:
    """An ExportError for a failure while running ``what`` (e.g. "kind 'orders'")."""
    if isinstance(exc, asyncpg.QueryCanceledError):
        return ExportError(
            ErrorKind.TIMEOUT,
            f"{what} ran longer than its statement timeout and was cancelled by Postgres",
        )
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        detail = f"{exc.__class__.__name__} [{sqlstate}]: {exc}"
        if sqlstate[:2] in _RETRYABLE_CLASSES:
            return ExportError(ErrorKind.DATABASE_UNAVAILABLE, f"{what}: database error {detail}")
        return ExportError(
            ErrorKind.QUERY_ERROR,
            f"{what}: the query failed with {detail}; fix the definition and enqueue again",
        )
    if isinstance(exc, CONNECTION_ERRORS):
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
            delay = min(0.5 * 2 ** min(failures, 8), 10.0, left)
            log.warning(
                "database_unreachable",
                database=what,
                # The driver may quote the DSN: its secrets never reach a log.
                error=redact_text(repr(exc), dsn),
                retry_in=round(delay, 2),
                gives_up_in=round(left, 1),
            )
            await asyncio.sleep(delay)
