"""Enqueue an export inside the application's own transaction.

Each helper inserts the job on the connection (or session) it is given, in
whatever transaction is open there, and returns the new job: it exists only
if that transaction commits, and vanishes with a rollback, so an export can
never be asked for by a change that did not happen, nor be lost by one that
did. Nothing is committed, begun or rolled back here.

Every helper takes the same arguments, checks them as the daemon does (all
problems at once, ``InvalidJob``), and raises ``DuplicateJob`` carrying the
live job when the owner already has a pending or processing job with the
same ``dedupe_key``; that collision is not an SQL error, so the transaction
stays usable. The statements are ``queries.sql``'s. The drivers are the
application's: none is imported unless its helper is called (SQLAlchemy's
``text``), and each is only called through the methods named below.

What only the daemon knows (the kind, its params' schema, its quota) is
checked when the job is claimed: a job that does not pass fails with
``error_kind`` ``unknown_kind``, ``invalid_params`` or ``quota_exceeded``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from exportd_client._models import Job
from exportd_client._protocol import tuple_row
from exportd_client._sql import TRIES, DuplicateBusy, duplicate, first_column, job_of, render
from exportd_client._sql import prepare as _prepare


class AsyncpgConnection(Protocol):
    """What is used of an ``asyncpg.Connection`` (or pool connection)."""

    async def fetchval(self, query: str, *args: Any) -> Any: ...


def _psycopg_row(cursor: Any) -> Any:
    cursor.row_factory = tuple_row
    return cursor.fetchone()


async def _psycopg_row_async(cursor: Any) -> Any:
    cursor.row_factory = tuple_row
    return await cursor.fetchone()


class PsycopgConnection(Protocol):
    """What is used of a ``psycopg.Connection``: ``execute`` returning a cursor."""

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...


class PsycopgAsyncConnection(Protocol):
    """What is used of a ``psycopg.AsyncConnection``."""

    async def execute(self, query: Any, params: Any = ..., /) -> Any: ...


class SqlAlchemyExecutor(Protocol):
    """A SQLAlchemy ``Connection`` or ``Session``: ``execute(text(...), values)``."""

    def execute(self, statement: Any, params: Any = ..., /) -> Any: ...


class SqlAlchemyAsyncExecutor(Protocol):
    """A SQLAlchemy ``AsyncConnection`` or ``AsyncSession``."""

    async def execute(self, statement: Any, params: Any = ..., /) -> Any: ...


async def enqueue_asyncpg(
    conn: AsyncpgConnection,
    owner: str,
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    format: str | None = None,
    priority: int | None = None,
    run_after: datetime | None = None,
    max_attempts: int | None = None,
    dedupe_key: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Job:
    """Insert a job on an asyncpg connection, in its open transaction (if any).

    Arguments left None take the table's defaults (``csv``, priority 0, now,
    5 attempts, no dedupe, ``{}`` options). Raises InvalidJob, DuplicateJob,
    and the driver's own errors (a connection lost, a transaction aborted).
    """
    insert = _prepare(
        owner,
        kind,
        params,
        format=format,
        priority=priority,
        run_after=run_after,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        options=options,
    )
    sql, order = render(insert.statement, "asyncpg")
    dup_sql, dup_order = render("live_duplicate", "asyncpg")
    for _ in range(TRIES):
        created = await conn.fetchval(sql, *(insert.values[k] for k in order))
        if created is not None:
            return job_of(str(created))
        live = await conn.fetchval(dup_sql, *(insert.duplicate_values()[k] for k in dup_order))
        if (raised := duplicate(None if live is None else str(live))) is not None:
            raise raised
    raise DuplicateBusy()


def enqueue_psycopg(
    conn: PsycopgConnection,
    owner: str,
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    format: str | None = None,
    priority: int | None = None,
    run_after: datetime | None = None,
    max_attempts: int | None = None,
    dedupe_key: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Job:
    """``enqueue_asyncpg`` on a psycopg 3 ``Connection`` (any row factory: the
    helper's own cursors read tuples, the connection's factory is untouched); in its
    transaction, which psycopg opens on first use unless the connection is
    in autocommit mode."""
    insert = _prepare(
        owner,
        kind,
        params,
        format=format,
        priority=priority,
        run_after=run_after,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        options=options,
    )
    sql, _ = render(insert.statement, "psycopg")
    dup_sql, _ = render("live_duplicate", "psycopg")
    for _ in range(TRIES):
        created = first_column(_psycopg_row(conn.execute(sql, insert.values)))
        if created is not None:
            return job_of(created)
        live = first_column(_psycopg_row(conn.execute(dup_sql, insert.duplicate_values())))
        if (raised := duplicate(live)) is not None:
            raise raised
    raise DuplicateBusy()


async def enqueue_psycopg_async(
    conn: PsycopgAsyncConnection,
    owner: str,
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    format: str | None = None,
    priority: int | None = None,
    run_after: datetime | None = None,
    max_attempts: int | None = None,
    dedupe_key: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Job:
    """``enqueue_psycopg`` on a psycopg 3 ``AsyncConnection``."""
    insert = _prepare(
        owner,
        kind,
        params,
        format=format,
        priority=priority,
        run_after=run_after,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        options=options,
    )
    sql, _ = render(insert.statement, "psycopg")
    dup_sql, _ = render("live_duplicate", "psycopg")
    for _ in range(TRIES):
        cursor = await conn.execute(sql, insert.values)
        created = first_column(await _psycopg_row_async(cursor))
        if created is not None:
            return job_of(created)
        cursor = await conn.execute(dup_sql, insert.duplicate_values())
        if (raised := duplicate(first_column(await _psycopg_row_async(cursor)))) is not None:
            raise raised
    raise DuplicateBusy()


def enqueue_sqlalchemy(
    conn: SqlAlchemyExecutor,
    owner: str,
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    format: str | None = None,
    priority: int | None = None,
    run_after: datetime | None = None,
    max_attempts: int | None = None,
    dedupe_key: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Job:
    """``enqueue_psycopg`` on a SQLAlchemy ``Connection`` or ``Session`` (any
    Postgres driver): in the connection's or the session's transaction, which
    SQLAlchemy begins on first use; it commits with ``commit()``."""
    from sqlalchemy import text

    insert = _prepare(
        owner,
        kind,
        params,
        format=format,
        priority=priority,
        run_after=run_after,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        options=options,
    )
    sql, _ = render(insert.statement, "sqlalchemy")
    dup_sql, _ = render("live_duplicate", "sqlalchemy")
    for _ in range(TRIES):
        created = first_column(conn.execute(text(sql), insert.values).first())
        if created is not None:
            return job_of(created)
        live = first_column(conn.execute(text(dup_sql), insert.duplicate_values()).first())
        if (raised := duplicate(live)) is not None:
            raise raised
    raise DuplicateBusy()


async def enqueue_sqlalchemy_async(
    conn: SqlAlchemyAsyncExecutor,
    owner: str,
    kind: str,
    params: Mapping[str, Any] | None = None,
    *,
    format: str | None = None,
    priority: int | None = None,
    run_after: datetime | None = None,
    max_attempts: int | None = None,
    dedupe_key: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Job:
    """``enqueue_sqlalchemy`` on a SQLAlchemy ``AsyncConnection`` or ``AsyncSession``."""
    from sqlalchemy import text

    insert = _prepare(
        owner,
        kind,
        params,
        format=format,
        priority=priority,
        run_after=run_after,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        options=options,
    )
    sql, _ = render(insert.statement, "sqlalchemy")
    dup_sql, _ = render("live_duplicate", "sqlalchemy")
    for _ in range(TRIES):
        created = first_column((await conn.execute(text(sql), insert.values)).first())
        if created is not None:
            return job_of(created)
        result = await conn.execute(text(dup_sql), insert.duplicate_values())
        if (raised := duplicate(first_column(result.first()))) is not None:
            raise raised
    raise DuplicateBusy()
