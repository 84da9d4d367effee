"""Ticks the maintenance tasks: the loop holds no logic of its own."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any, Protocol

import structlog

from exportd.metrics import Metrics


class MaintenanceTask(Protocol):
    name: str
    # A round that did this much may have left more: run again at once.
    batch_size: int

    async def run_once(self) -> int: ...


async def tick(task: MaintenanceTask, log: Any = None, metrics: Metrics | None = None) -> int:
    """Run ``task`` until a round leaves nothing behind; never raises."""
    log = log or structlog.get_logger()
    total = 0
    try:
        while True:
            done = await task.run_once()
            total += done
            if metrics is not None and done:
                metrics.maintenance_items.labels(task.name).inc(done)
            if done < task.batch_size:
                break
    except Exception as exc:
        # The next tick tries again; an outage must not end maintenance.
        log.warning("maintenance_failed", task=task.name, error=repr(exc))
        if metrics is not None:
            metrics.maintenance_failures.labels(task.name).inc()
    return total


async def run_forever(
    tasks: Sequence[MaintenanceTask],
    interval: float,
    log: Any = None,
    metrics: Metrics | None = None,
) -> None:
    log = log or structlog.get_logger()
    # Replicas started together (a deploy, the end of an outage) would
    # otherwise all knock on the advisory locks at the same moments.
    await asyncio.sleep(random.uniform(0, interval))  # noqa: S311 - not security
    while True:
        for task in tasks:
            await tick(task, log, metrics)
        await asyncio.sleep(interval)
