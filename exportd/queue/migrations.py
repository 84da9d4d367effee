"""Apply the schema migrations, safely from several processes at once."""

from __future__ import annotations

import asyncpg

from exportd.queue.sql import Migration, migrations, queries


async def applied_versions(conn: asyncpg.Connection) -> set[int]:
    q = queries()
    if not await conn.fetchval(q["migrations_table_exists"]):
        return set()
    return {int(r["version"]) for r in await conn.fetch(q["migrations_applied"])}


async def pending_migrations(conn: asyncpg.Connection) -> list[Migration]:
    done = await applied_versions(conn)
    return [m for m in migrations() if m.version not in done]


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Apply every pending migration in one transaction; returns those applied.

    A migration either applies whole or not at all, and the advisory lock
    makes two deploys that start at once take turns.
    """
    q = queries()
    async with conn.transaction():
        await conn.execute(q["migrate_lock"])
        await conn.execute(q["migrate_bootstrap"])
        todo = await pending_migrations(conn)
        for migration in todo:
            await conn.execute(migration.sql)
            await conn.execute(q["migration_record"], migration.version, migration.name)
    return todo


async def create_database(conn: asyncpg.Connection, name: str) -> bool:
    """Create the database ``name`` on ``conn``'s server unless it exists; True
    when it was created. ``conn`` is to another database of that server."""
    q = queries()
    if await conn.fetchval(q["dev_database_exists"], name):
        return False
    await conn.execute(await conn.fetchval(q["dev_create_database_statement"], name))
    return True
