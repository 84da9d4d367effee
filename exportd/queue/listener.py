"""LISTEN/NOTIFY: a latency hint for the worker, never its only source of work.

A dedicated connection listens on ``exportd_jobs`` (new pending jobs: wake
the claim loop) and ``exportd_events`` (terminal states: stop a cancelled job
at once rather than at its next heartbeat). Notifications are lost while the
connection is down, and a transaction-pooling proxy drops them altogether, so
the worker polls as well and the heartbeat catches every cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

from exportd.queue.backoff import exponential_delay
from exportd.queue.sql import queries

PENDING_CHANNEL = "exportd_jobs"
EVENTS_CHANNEL = "exportd_events"
# The wait before reconnecting after a session that had listened; it doubles
# with each failure in a row, up to ``max_backoff``.
_FIRST_RETRY_SECONDS = 0.5


class Listener:
    def __init__(
        self,
        dsn: str,
        on_pending: Callable[[], None],
        on_event: Callable[[uuid.UUID, str], None],
        *,
        keepalive_seconds: float = 15.0,
        max_backoff: float = 30.0,
        timeout_seconds: float = 10.0,
        logger: Any = None,
    ) -> None:
        self._dsn = dsn
        # Connecting, LISTEN and the keepalive ping each: a half-open
        # connection must not stall the listener for good.
        self._timeout = timeout_seconds
        self._on_pending = on_pending
        self._on_event = on_event
        self._keepalive = keepalive_seconds
        self._max_backoff = max_backoff
        self.log = logger or structlog.get_logger()
        self.connected = asyncio.Event()
        self._listened = False

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        if channel == PENDING_CHANNEL:
            self._on_pending()
            return
        try:
            event = json.loads(payload)
            self._on_event(uuid.UUID(event["id"]), str(event["state"]))
        except (ValueError, KeyError, TypeError):
            self.log.warning("notification_malformed", channel=channel, payload=payload[:200])

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff."""
        failures = 0
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("listen_failed", error=repr(exc), failures=failures + 1)
            # A session that got as far as listening resets the backoff.
            failures = 0 if self._listened else failures + 1
            self._listened = False
            self.connected.clear()
            await asyncio.sleep(
                exponential_delay(failures, _FIRST_RETRY_SECONDS, self._max_backoff)
            )

    async def _listen_once(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn, timeout=self._timeout, command_timeout=self._timeout
        )
        try:
            await conn.add_listener(PENDING_CHANNEL, self._dispatch)
            await conn.add_listener(EVENTS_CHANNEL, self._dispatch)
            self.connected.set()
            self._listened = True
            self.log.info("listening", channels=[PENDING_CHANNEL, EVENTS_CHANNEL])
            # Jobs may have arrived while nobody listened.
            self._on_pending()
            ping = queries()["ping"]
            # A server that closes the connection (a restart, a terminated
            # backend) is noticed at once, so LISTEN is back as soon as the
            # server is; the ping catches a connection that is only half-open.
            closed = asyncio.Event()
            conn.add_termination_listener(lambda _conn: closed.set())
            while not conn.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), timeout=self._keepalive)
                if closed.is_set() or conn.is_closed():
                    break
                await conn.fetchval(ping, timeout=self._timeout)
            self.log.warning("listen_connection_lost")
        finally:
            self.connected.clear()
            if not conn.is_closed():
                await conn.close(timeout=self._timeout)
