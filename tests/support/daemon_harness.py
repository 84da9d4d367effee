"""Run a whole daemon in-process, as `exportd run` would, for integration tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from exportd.daemon.serve import Daemon, serve
from exportd.definitions.kinds import Definitions
from exportd.definitions.loader import definitions_from_text
from exportd.settings.model import MIB

TOKEN = "test-token"

# Quick leases, polls and backoff so that tests see the queue's behaviour in
# seconds; 5 MiB parts (the S3 minimum) so that a few MiB span several parts.
FAST: dict[str, Any] = {
    "concurrency": 2,
    "lease_seconds": 3.0,
    "poll_interval": 0.2,
    "reap_interval": 0.3,
    "backoff_base_seconds": 0.5,
    "backoff_max_seconds": 2.0,
    "shutdown_grace_seconds": 5.0,
    "s3_part_size": 5 * MIB,
    "s3_max_export_bytes": 10_000 * 5 * MIB,
    "api_port": 0,
    "api_tokens": TOKEN,
}


@contextlib.asynccontextmanager
async def running_daemon(settings: Any, definitions: Definitions | str) -> AsyncIterator[Daemon]:
    if isinstance(definitions, str):
        definitions = definitions_from_text(definitions)
    started: asyncio.Future[Daemon] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(settings, definitions, on_started=started.set_result, install_signal_handlers=False)
    )
    first: set[asyncio.Future[Any]] = {task, started}
    await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises what stopped the daemon from starting
    daemon = started.result()
    try:
        yield daemon
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 30)
