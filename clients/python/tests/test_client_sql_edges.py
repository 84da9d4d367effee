"""The transactional helpers with what applications really hand them: mappings
that are not dicts, psycopg row factories that build objects, numbers Postgres
writes longer than Python does, a LISTEN connection inside a transaction. In
each case the application's transaction must stay usable: a refusal comes
before any statement, never as an SQL error that aborts it."""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import psycopg
import pytest
from client_support import Exportd
from exportd_client import AsyncClient, Client, InvalidJob, enqueue_asyncpg, enqueue_psycopg
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
