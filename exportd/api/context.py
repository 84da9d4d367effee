"""What the API's handlers share: the daemon's queue, S3 client, settings and metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from exportd.definitions.kinds import Definitions
from exportd.metrics import Metrics
from exportd.queue.postgres import PgJobStore
from exportd.s3.client import S3Client
from exportd.s3.presign import Presigner
from exportd.settings.model import Settings
from exportd.worker.breaker import BreakerStatus


@dataclass
class ApiContext:
    queue: PgJobStore
    s3: S3Client
    settings: Settings
    definitions: Definitions = field(default_factory=lambda: Definitions([]))
    worker_alive: Callable[[], bool] = lambda: True
    draining: Callable[[], bool] = lambda: False
    # More readiness checks, each "ok" or why not (the storage breaker).
    extra_checks: Callable[[], dict[str, str]] = dict
    metrics: Metrics = field(default_factory=Metrics)
    # This daemon's worker id, and its storage breaker's state (in-process: the
    # dashboard is served by the daemon it describes); None outside a daemon.
    worker_id: str | None = None
    breaker: Callable[[], BreakerStatus | None] = lambda: None
    # Made on first use: it needs credentials, which a daemon may start without.
    presigner: Presigner | None = None
    _ready_at: float = field(default=0.0)
    _ready_checks: dict[str, str] = field(default_factory=dict)


CONTEXT = web.AppKey("exportd_context", ApiContext)
