"""A job's time zone checked in its export's session: Postgres must know it
(``pg_timezone_names``), so that a row inserted directly with an unknown zone fails
``invalid_params`` before any query runs, not ``query_error`` at the session's
settings. The API checks new jobs against a cached set (``queue.zones``)."""

from __future__ import annotations

import asyncpg

from exportd.definitions.options.resolve import unknown_zone
from exportd.definitions.params.spec import InvalidParams
from exportd.queue.sql import queries


async def check_zone(conn: asyncpg.Connection, zone: str) -> None:
    """Raise InvalidParams (``options.timezone``) unless Postgres knows ``zone``."""
    if not await conn.fetchval(queries()["timezone_known"], zone):
        raise InvalidParams([unknown_zone(zone)])
