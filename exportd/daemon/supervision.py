"""Background loops that watch the daemon's own health.

The storage probe closes the circuit breaker once the bucket answers again;
the watchdog tells systemd the worker loop still lives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

from exportd.daemon.systemd import Notifier
from exportd.s3.client import S3Client
from exportd.s3.objects import check_bucket
from exportd.worker.breaker import StorageBreaker


class _Alive(Protocol):
    @property
    def alive(self) -> bool: ...


async def probe_storage(
    breaker: StorageBreaker,
    s3: S3Client,
    bucket: str,
    interval: float,
    wake: Callable[[], None],
) -> None:
    """While the breaker is open, probe the bucket; close it when the bucket answers."""
    log = structlog.get_logger()
    while True:
        await breaker.opened.wait()
        await asyncio.sleep(interval)
        if breaker.allows_claims:
            continue  # an export completed meanwhile and closed it
        try:
            await asyncio.wait_for(check_bucket(s3, bucket), timeout=max(interval, 5.0))
        except Exception as exc:
            log.warning("storage_probe_failed", error=repr(exc))
            continue
        if breaker.record_success():
            log.info("storage_breaker_closed", by="probe")
            wake()


async def watchdog(notifier: Notifier, worker: _Alive, interval: float) -> None:
    """WATCHDOG=1 while the worker loop lives: a hung loop gets the daemon restarted."""
    while True:
        if worker.alive:
            notifier.watchdog()
        await asyncio.sleep(interval)
