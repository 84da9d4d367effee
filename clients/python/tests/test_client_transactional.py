"""Enqueueing inside the application's own transaction, through each helper and
its real driver, against a real `exportd run`: a committed job runs to the end,
a rolled-back one never existed, a dedupe conflict carries the live job and
leaves the transaction usable."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from client_support import Exportd, stored_object
from exportd_client import (
    AsyncClient,
    DuplicateJob,
    InvalidJob,
    Job,
    NotFound,
    enqueue_asyncpg,
    enqueue_psycopg,
    enqueue_psycopg_async,
    enqueue_sqlalchemy,
    enqueue_sqlalchemy_async,
)
from psycopg.rows import dict_row
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import Session

from tests.support.daemon_harness import TOKEN

LATER = datetime.now(UTC) + timedelta(days=1)
HELPERS = [
    "asyncpg",
    "psycopg",
    "psycopg_async",
    "sqlalchemy_connection",
    "sqlalchemy_session",
    "sqlalchemy_async",
]

Enqueue = Callable[..., Awaitable[Job]]


def _sync(call: Callable[..., Job], conn: Any) -> Enqueue:
    async def enqueue(*args: Any, **kwargs: Any) -> Job:
        return call(conn, *args, **kwargs)

    return enqueue


def _async(call: Callable[..., Awaitable[Job]], conn: Any) -> Enqueue:
    async def enqueue(*args: Any, **kwargs: Any) -> Job:
        return await call(conn, *args, **kwargs)

    return enqueue


def _url(dsn: str, driver: str) -> str:
    return dsn.replace("postgresql://", f"postgresql+{driver}://", 1)


@contextlib.asynccontextmanager
async def transaction(helper: str, dsn: str, *, commit: bool) -> AsyncIterator[Enqueue]:
    """An application's transaction on ``helper``'s driver: yields its enqueue,
    then commits (``commit``) or rolls back; rolls back on an exception."""
    if helper == "asyncpg":
        conn = await asyncpg.connect(dsn)
        tr = conn.transaction()
        await tr.start()
        try:
            yield _async(enqueue_asyncpg, conn)
            await (tr.commit() if commit else tr.rollback())
        except BaseException:
            await tr.rollback()
            raise
        finally:
            await conn.close()
    elif helper == "psycopg":
        # A row factory of the application's choice: the helper reads either shape.
        with psycopg.connect(dsn, row_factory=dict_row) as sync_conn:
            try:
                yield _sync(enqueue_psycopg, sync_conn)
                sync_conn.commit() if commit else sync_conn.rollback()
            except BaseException:
                sync_conn.rollback()
                raise
    elif helper == "psycopg_async":
        async with await psycopg.AsyncConnection.connect(dsn) as async_conn:
            try:
                yield _async(enqueue_psycopg_async, async_conn)
                await (async_conn.commit() if commit else async_conn.rollback())
            except BaseException:
                await async_conn.rollback()
                raise
    elif helper in ("sqlalchemy_connection", "sqlalchemy_session"):
        engine = create_engine(_url(dsn, "psycopg"))
        try:
            with engine.connect() if helper.endswith("connection") else Session(engine) as db:
                try:
                    yield _sync(enqueue_sqlalchemy, db)
                    db.commit() if commit else db.rollback()
                except BaseException:
                    db.rollback()
                    raise
        finally:
            engine.dispose()
    else:
        async_engine = create_async_engine(_url(dsn, "asyncpg"))
        try:
            async with async_engine.connect() as adb:
                try:
                    yield _async(enqueue_sqlalchemy_async, adb)
                    await (adb.commit() if commit else adb.rollback())
                except BaseException:
                    await adb.rollback()
                    raise
        finally:
            await async_engine.dispose()


async def _jobs_of(dsn: str, owner: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM exportd.jobs WHERE owner = $1", owner
        )
    finally:
        await conn.close()
    return count


@pytest.mark.parametrize("helper", HELPERS)
async def test_a_job_enqueued_in_a_committed_transaction_is_exported(
    helper: str, exportd: Exportd, owner: str, ledger: list[str], tmp_path: Path
) -> None:
    async with AsyncClient(exportd.url, TOKEN) as client:
        async with transaction(helper, exportd.dsn, commit=True) as enqueue:
            job = await enqueue(owner, "ledger", {}, format="csv", max_attempts=2)
            assert (job.state, job.owner, job.kind, job.max_attempts) == (
                "pending",
                owner,
                "ledger",
                2,
            )
            assert (job.options, job.priority, job.attempts) == ({}, 0, 0)
            # Not yet committed: nobody else sees it, the daemon least of all.
            with pytest.raises(NotFound):
                await client.get(job.id)
        done = await client.wait(job.id, timeout=60)
        assert (done.state, done.row_count) == ("completed", 3)
        await client.download(job.id, tmp_path / "export.csv")
    stored = stored_object(exportd, str(done.object_key))
    assert (tmp_path / "export.csv").read_bytes() == stored
    assert stored.decode().splitlines() == ledger


@pytest.mark.parametrize("helper", HELPERS)
async def test_a_rolled_back_transaction_leaves_no_job(
    helper: str, exportd: Exportd, owner: str
) -> None:
    async with transaction(helper, exportd.dsn, commit=False) as enqueue:
        job = await enqueue(owner, "ledger", {"note": "é"}, priority=3)
        assert (job.params, job.priority) == ({"note": "é"}, 3)
    assert await _jobs_of(exportd.dsn, owner) == 0
    async with AsyncClient(exportd.url, TOKEN) as client:
        with pytest.raises(NotFound):
            await client.get(job.id)


@pytest.mark.parametrize("helper", HELPERS)
async def test_a_dedupe_conflict_carries_the_live_job_and_keeps_the_transaction(
    helper: str, exportd: Exportd, owner: str
) -> None:
    async with transaction(helper, exportd.dsn, commit=True) as enqueue:
        first = await enqueue(owner, "ledger", dedupe_key="monthly", run_after=LATER)
    async with transaction(helper, exportd.dsn, commit=True) as enqueue:
        with pytest.raises(DuplicateJob) as duplicate:
            await enqueue(owner, "ledger", dedupe_key="monthly")
        assert (duplicate.value.job.id, duplicate.value.job.state) == (first.id, "pending")
        assert duplicate.value.job.run_after == LATER
        # No SQL error was raised: the same transaction goes on and commits.
        other = await enqueue(owner, "ledger", dedupe_key="weekly", run_after=LATER)
    assert await _jobs_of(exportd.dsn, owner) == 2
    async with AsyncClient(exportd.url, TOKEN) as client:
        assert (await client.cancel(first.id)).state == "cancelled"
        assert (await client.cancel(other.id)).state == "cancelled"


async def test_a_job_the_table_would_refuse_is_refused_before_any_statement(
    exportd: Exportd, owner: str
) -> None:
    deep: Any = 1
    for _ in range(31):  # the 1 lies 32 levels deep: jobs_options_depth refuses it
        deep = [deep]
    async with transaction("asyncpg", exportd.dsn, commit=True) as enqueue:
        with pytest.raises(InvalidJob) as refused:
            await enqueue(
                owner,
                "k" * 129,
                {"note": "a\x00b"},
                format="pdf",
                priority=40000,
                dedupe_key="",
                options={"deep": deep},
            )
        # The transaction was never touched: it still commits.
        await enqueue(owner, "ledger", run_after=LATER)
    fields = [p.field for p in refused.value.problems]
    assert fields == ["kind", "dedupe_key", "priority", "params.note", "options", "format"]
    assert refused.value.problems[0].message == "must be at most 128 bytes of UTF-8 (it has 129)"
    assert await _jobs_of(exportd.dsn, owner) == 1
