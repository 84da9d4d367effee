"""``exportd run``: the worker, the reaper, the listener and the API in one process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from exportd import db
from exportd.api import ApiContext, start_api
from exportd.backoff import BackoffPolicy
from exportd.definitions import Definitions
from exportd.exporter import Exporter, ExportOptions
from exportd.listener import Listener
from exportd.metrics import Metrics
from exportd.migrate import pending_migrations
from exportd.parts import choose_part_size
from exportd.pgstore import PgJobStore
from exportd.reaper import Reaper
from exportd.settings import Settings, SettingsError, redact_url
from exportd.storage import open_s3_client
from exportd.worker import Worker, WorkerConfig


class StartupError(Exception):
    """The daemon cannot start; the message says why in one line."""


@dataclass
class Daemon:
    """A running daemon's parts, for tests and for the signal handlers."""

    settings: Settings
    worker: Worker
    api_port: int
    metrics: Metrics
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        """First call: drain. Second call: stop running jobs without waiting."""
        if self.worker.stopping:
            self.worker.hurry()
        else:
            self.worker.request_stop()


def backoff_policy(settings: Settings) -> BackoffPolicy:
    return BackoffPolicy(settings.backoff_base_seconds, settings.backoff_max_seconds)


async def _queue_pool(
    settings: Settings, stack: contextlib.AsyncExitStack, size: int, **kw: Any
) -> asyncpg.Pool:
    """A pool on the queue database, closed with ``stack``."""
    try:
        # Queue statements are short: one that takes longer than this is
        # stuck on a dead connection, and waiting on it would stall the
        # claim loop, a heartbeat or the shutdown.
        pool = await db.create_pool(
            settings.database_url, min_size=1, max_size=size, command_timeout=30, **kw
        )
    except Exception as exc:
        raise StartupError(
            f"cannot reach the database at {redact_url(settings.database_url)}: {exc}"
        ) from None
    stack.push_async_callback(pool.close)
    return pool


async def serve(
    settings: Settings,
    definitions: Definitions,
    *,
    on_started: Any = None,
    install_signal_handlers: bool = True,
) -> None:
    """Run until SIGTERM/SIGINT (or ``Daemon.stop``), then drain and return."""
    log = structlog.get_logger()
    bucket = settings.bucket()
    try:
        part_size = choose_part_size(settings.s3_max_export_bytes, settings.s3_part_size)
    except ValueError as exc:
        raise SettingsError(f"invalid settings: {exc}") from None

    async with contextlib.AsyncExitStack() as stack:
        pool = await _queue_pool(settings, stack, settings.queue_pool_size)
        async with pool.acquire() as conn:
            missing = await pending_migrations(conn)
        if missing:
            raise StartupError(
                f"the database schema is {len(missing)} migration(s) behind; run `exportd migrate`"
            )
        try:
            source_pool = await db.create_pool(
                settings.source_url, min_size=1, max_size=settings.concurrency + 1
            )
        except Exception as exc:
            raise StartupError(
                f"cannot reach the source database at {redact_url(settings.source_url)}: {exc}"
            ) from None
        stack.push_async_callback(source_pool.close)
        s3 = await open_s3_client(settings, stack)

        policy = backoff_policy(settings)
        metrics = Metrics()
        exporter = Exporter(
            source_pool,
            s3,
            definitions,
            ExportOptions(
                bucket=bucket,
                prefix=settings.s3_prefix,
                part_size=part_size,
                parts_in_flight=settings.s3_parts_in_flight,
                max_bytes=settings.s3_max_export_bytes,
                timezone=settings.export_timezone,
            ),
        )
        worker = Worker(
            PgJobStore(pool),
            exporter,
            WorkerConfig(
                concurrency=settings.concurrency,
                lease_seconds=settings.lease_seconds,
                poll_interval=settings.poll_interval,
                retention_seconds=settings.retention.total_seconds(),
                backoff=policy,
            ),
            metrics=metrics,
        )

        async def abort(key: str, upload_id: str) -> None:
            await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)

        reaper = Reaper(pool, policy, abort_upload=abort, metrics=metrics)
        listener = Listener(settings.database_url, worker.wake, worker.on_job_event)

        # The API's own connections: a burst of requests never keeps a
        # heartbeat waiting, and its one-statement requests need no reset.
        api_pool = await _queue_pool(settings, stack, settings.api_pool_size, reset=db.keep_session)
        api_ctx = ApiContext(
            pool=api_pool,
            s3=s3,
            settings=settings,
            definitions=definitions,
            worker_alive=lambda: worker.alive,
            draining=lambda: worker.stopping,
            metrics=metrics,
        )
        try:
            runner, port = await start_api(api_ctx, settings.api_host, settings.api_port)
        except OSError as exc:
            raise StartupError(
                f"cannot serve the API on {settings.api_host}:{settings.api_port} "
                f"({exc.strerror}); set EXPORTD_API_PORT (exportd dev: --port) to a free port"
            ) from None
        stack.push_async_callback(runner.cleanup)

        daemon = Daemon(settings, worker, port, metrics)
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, daemon.stop)
                stack.callback(loop.remove_signal_handler, sig)

        background = [
            asyncio.create_task(listener.run(), name="exportd-listener"),
            asyncio.create_task(reaper.run_forever(settings.reap_interval), name="exportd-reaper"),
        ]
        log.info(
            "daemon_started",
            worker_id=worker.worker_id,
            concurrency=settings.concurrency,
            kinds=sorted(definitions.names()),
            api=f"http://{settings.api_host}:{port}",
            database=redact_url(settings.database_url),
            bucket=bucket,
            part_size=part_size,
        )
        if on_started is not None:
            on_started(daemon)
        try:
            await worker.run(settings.shutdown_grace_seconds)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            log.info("daemon_stopped", worker_id=worker.worker_id)
