"""The transactional helpers with what applications really hand them: mappings
that are not dicts, psycopg row factories that build objects, numbers Postgres
writes longer than Python does, a LISTEN connection inside a transaction. In
each case the application's transaction must stay usable: a refusal comes
before any statement, never as an SQL error that aborts it."""

from __future__ import annotations

import asyncio
import types
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import psycopg
import pytest
from client_support import Exportd
from exportd_client import (
    AsyncClient,
    Client,
    DuplicateJob,
    InvalidJob,
    enqueue_asyncpg,
    enqueue_psycopg,
)
from exportd_client._validation import PARAMS_MAX_BYTES
from psycopg.rows import class_row

from tests.support.daemon_harness import TOKEN

LATER = datetime.now(UTC) + timedelta(days=1)


async def test_params_and_options_may_be_any_mapping(exportd: Exportd, owner: str) -> None:
    params = types.MappingProxyType({"note": "read-only"})
    options = types.MappingProxyType({"timezone": "UTC"})
    conn = await asyncpg.connect(exportd.dsn)
    try:
        async with conn.transaction():
            job = await enqueue_asyncpg(
                conn, owner, "ledger", params, options=options, run_after=LATER
            )
    finally:
        await conn.close()
    assert (job.params, job.options) == ({"note": "read-only"}, {"timezone": "UTC"})
    with Client(exportd.url, TOKEN) as client:
        assert client.cancel(job.id).state == "cancelled"


@dataclass
class Picked:
    """An application's row class: its fields are its own, never ``job``."""

    id: int


def test_a_psycopg_connection_whose_rows_are_objects(exportd: Exportd, owner: str) -> None:
    with psycopg.connect(exportd.dsn, row_factory=class_row(Picked)) as conn:
        job = enqueue_psycopg(conn, owner, "ledger", run_after=LATER)
        assert conn.execute("SELECT 1 AS id").fetchone() == Picked(1)  # the factory still holds
        conn.commit()
    with Client(exportd.url, TOKEN) as client:
        assert client.cancel(job.id).state == "cancelled"


async def test_params_postgres_writes_over_the_bound_are_refused_before_the_insert(
    exportd: Exportd, owner: str
) -> None:
    # "1e+300" in Python's JSON; 301 digits in jsonb's text, which the table measures.
    params = {"amounts": [1e300] * 250}
    conn = await asyncpg.connect(exportd.dsn)
    try:
        async with conn.transaction():
            with pytest.raises(InvalidJob) as refused:
                await enqueue_asyncpg(conn, owner, "ledger", params)
            # Nothing was sent: the transaction goes on.
            job = await enqueue_asyncpg(conn, owner, "ledger", run_after=LATER)
        measured = await conn.fetchval(
            "SELECT octet_length(CAST($1 AS jsonb)::text)",
            '{"amounts": [' + ", ".join(["1e300"] * 250) + "]}",
        )
    finally:
        await conn.close()
    assert measured > PARAMS_MAX_BYTES
    [problem] = refused.value.problems
    assert problem.field == "params"
    assert problem.message.startswith(f"must be at most {PARAMS_MAX_BYTES} bytes as JSON text")
    async with AsyncClient(exportd.url, TOKEN) as client:
        assert (await client.cancel(job.id)).state == "cancelled"


async def test_listening_on_a_connection_inside_a_transaction_is_refused(
    exportd: Exportd, owner: str
) -> None:
    conn = await asyncpg.connect(exportd.dsn)
    try:
        async with AsyncClient(exportd.url, TOKEN, owner=owner) as client:
            job = await client.enqueue("ledger", run_after=LATER)
            async with conn.transaction():
                # LISTEN would take effect at commit only: the wait could never hear.
                with pytest.raises(ValueError, match="transaction"):
                    await client.wait(job.id, timeout=30, listen=conn)
            await client.cancel(job.id)
    finally:
        await conn.close()


def test_listening_with_psycopg_inside_a_transaction_is_refused(
    exportd: Exportd, owner: str
) -> None:
    with (
        psycopg.connect(exportd.dsn, autocommit=True) as conn,
        Client(exportd.url, TOKEN, owner=owner) as client,
    ):
        job = client.enqueue("ledger", run_after=LATER)
        with conn.transaction(), pytest.raises(ValueError, match="transaction"):
            client.wait(job.id, timeout=30, listen=conn)
        client.cancel(job.id)


async def test_a_channel_the_application_listens_to_stays_listened_to(
    exportd: Exportd, owner: str
) -> None:
    with (
        psycopg.connect(exportd.dsn, autocommit=True) as conn,
        Client(exportd.url, TOKEN, owner=owner) as client,
    ):
        conn.execute("LISTEN exportd_events")
        job = client.enqueue("ledger")
        assert client.wait(job.id, timeout=60, listen=conn).state == "completed"
        channels = conn.execute("SELECT pg_listening_channels()").fetchall()
        assert channels == [("exportd_events",)]
    async_conn = await psycopg.AsyncConnection.connect(exportd.dsn, autocommit=True)
    try:
        async with AsyncClient(exportd.url, TOKEN, owner=owner) as aclient:
            await async_conn.execute("LISTEN exportd_events")
            job = await aclient.enqueue("ledger")
            done = await aclient.wait(job.id, timeout=60, listen=async_conn)
            assert done.state == "completed"
            cursor = await async_conn.execute("SELECT pg_listening_channels()")
            assert await cursor.fetchall() == [("exportd_events",)]
    finally:
        await async_conn.close()


async def _waiting_on_a_lock(dsn: str, pid: int) -> None:
    """Until backend ``pid`` waits on a lock (no clock: it is asked, not timed)."""
    conn = await asyncpg.connect(dsn)
    try:
        while not await conn.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
        ):
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


@pytest.mark.parametrize("first_commits", [True, False])
async def test_two_transactions_enqueueing_one_dedupe_key_make_one_job(
    exportd: Exportd, owner: str, first_commits: bool
) -> None:
    first, second = await asyncpg.connect(exportd.dsn), await asyncpg.connect(exportd.dsn)
    try:
        one, two = first.transaction(), second.transaction()
        await one.start()
        await two.start()
        made = await enqueue_asyncpg(first, owner, "ledger", dedupe_key="k", run_after=LATER)
        # The second insert waits on the first transaction's row...
        racing = asyncio.ensure_future(
            enqueue_asyncpg(second, owner, "ledger", dedupe_key="k", run_after=LATER)
        )
        await _waiting_on_a_lock(exportd.dsn, second.get_server_pid())
        # ...and learns its fate: the same job if it commits, a job of its own if not.
        await (one.commit() if first_commits else one.rollback())
        if first_commits:
            with pytest.raises(DuplicateJob) as duplicate:
                await racing
            assert duplicate.value.job.id == made.id
            await two.commit()
        else:
            theirs = await racing
            assert theirs.id != made.id
            await two.commit()
        count = await second.fetchval(
            "SELECT count(*) FROM exportd.jobs WHERE owner = $1 AND dedupe_key = 'k'", owner
        )
        assert count == 1
        await second.execute("UPDATE exportd.jobs SET state = 'cancelled' WHERE owner = $1", owner)
    finally:
        await first.close()
        await second.close()
