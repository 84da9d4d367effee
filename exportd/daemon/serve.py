"""``exportd run``: the worker, the reaper, the listener and the API in one process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import structlog

from exportd import database
from exportd.api.app import start_api
from exportd.api.context import ApiContext
from exportd.daemon import presence
from exportd.daemon.supervision import probe_storage, watchdog
from exportd.daemon.systemd import Notifier, watchdog_interval
from exportd.daemon.webhooks import webhook_config, webhook_deliverer
from exportd.definitions.kinds import Definitions
from exportd.definitions.params.spec import InvalidParams
from exportd.errors import ExportError
from exportd.export.engine import Exporter, ExportOptions
from exportd.export.file_rows import FilesConfig
from exportd.maintenance import runner as maintenance
from exportd.maintenance.purge import Purge
from exportd.maintenance.reaper import Reaper
from exportd.maintenance.retention import Retention
from exportd.maintenance.scheduler import Scheduler
from exportd.maintenance.uploads_sweep import UploadsSweep
from exportd.maintenance.webhook_purge import WebhookPurge
from exportd.maintenance.workers_prune import WorkersPrune
from exportd.metrics import Metrics
from exportd.queue.backoff import BackoffPolicy
from exportd.queue.listener import Listener
from exportd.queue.migrations import pending_migrations
from exportd.queue.postgres import PgJobStore
from exportd.redaction import redact_text, redact_url
from exportd.s3.client import open_files_client, open_s3_client
from exportd.s3.objects import abort_upload, delete_object
from exportd.s3.parts import choose_part_size
from exportd.settings.model import Settings, SettingsError
from exportd.tracing.setup import start_tracing, stop_tracing
from exportd.worker.breaker import StorageBreaker
from exportd.worker.loop import Worker, WorkerConfig

# How long past its deadline a stop may take: after the grace period (first
# signal) or at once (second signal), running jobs are cancelled and handed
# back; whatever is still in flight this much later (a commit, a statement, an
# API request) is cancelled with the worker loop; then the API (its own
# shutdown_timeout, 5 s) and the pools, all together, get as long again to
# close. ``exportd run`` exits within grace plus ``3 * SHUTDOWN_BOUND``.
SHUTDOWN_BOUND = 5.0


class StartupError(Exception):
    """The daemon cannot start; the message says why in one line."""


@dataclass
class Daemon:
    """A running daemon's parts, for tests and for the signal handlers."""

    settings: Settings
    worker: Worker
    api_port: int
    metrics: Metrics
    breaker: StorageBreaker
    notifier: Notifier = field(default_factory=lambda: Notifier(None))
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    # Cancels the worker loop, and whatever it awaits, in this many seconds
    # (never later than a deadline already set).
    stop_within: Callable[[float], None] = field(default=lambda _seconds: None)

    def stop(self) -> None:
        """First call: drain for the grace period. Second call: stop running jobs
        without waiting, whatever they are doing. Either way the loop is
        cancelled outright ``SHUTDOWN_BOUND`` seconds after that deadline."""
        self.notifier.stopping()
        if self.worker.stopping:
            self.worker.hurry()
            self.stop_within(SHUTDOWN_BOUND)
        else:
            self.worker.request_stop()
            self.stop_within(self.settings.shutdown_grace_seconds + SHUTDOWN_BOUND)


def backoff_policy(settings: Settings) -> BackoffPolicy:
    return BackoffPolicy(settings.backoff_base_seconds, settings.backoff_max_seconds)


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
    hooks = webhook_config(settings, definitions)
    try:
        part_size = choose_part_size(settings.s3_max_export_bytes, settings.s3_part_size)
    except ValueError as exc:
        raise SettingsError(f"invalid settings: {exc}") from None

    async with contextlib.AsyncExitStack() as stack:
        # As the OTEL_* variables ask; the last spans are flushed last, within a deadline.
        if start_tracing(show_owner=settings.trace_owner, log=log).on:
            stack.push_async_callback(stop_tracing)
        # Closed last, all at once, within one SHUTDOWN_BOUND.
        pools: list[asyncpg.Pool] = []
        stack.push_async_callback(_close_pools, pools)

        async def queue_pool(size: int) -> asyncpg.Pool:
            # Queue statements are short: one that takes longer than this is
            # stuck on a dead connection, and waiting on it would stall the
            # claim loop, a heartbeat or the shutdown. They leave no session
            # state behind (their settings and advisory locks are the
            # transaction's), so a connection goes back to the pool without
            # the reset statement that would add a round trip to each claim,
            # completion and heartbeat.
            #
            # Every statement has a deadline on both sides: asyncpg's
            # command_timeout stops waiting, the server's statement_timeout
            # stops the work when the client is gone, and
            # idle_in_transaction_session_timeout ends a session whose
            # transaction waits longer than any S3 call inside it may take,
            # so that a hung daemon's row locks are released.
            made = await _reach(
                settings.database_url,
                "database",
                settings.startup_wait_seconds,
                max_size=size,
                timeout=settings.database_seconds,
                command_timeout=settings.database_seconds,
                server_settings=_deadline_settings(settings),
                reset=database.keep_session,
            )
            pools.append(made)
            return made

        pool = await queue_pool(settings.queue_pool_size)
        async with pool.acquire() as conn:
            missing = await pending_migrations(conn)
        if missing:
            raise StartupError(
                f"the database schema is {len(missing)} migration(s) behind; run `exportd migrate`"
            )
        source_pool = await _reach(
            settings.source_url,
            "source database",
            settings.startup_wait_seconds,
            max_size=settings.concurrency + 1,
            # Connecting only: an export's statements are bounded by its kind's
            # statement timeout and its job's duration, not by a fixed deadline.
            timeout=settings.database_seconds,
        )
        pools.append(source_pool)
        s3 = await open_s3_client(settings, stack)
        files_s3 = await open_files_client(settings, stack)

        policy = backoff_policy(settings)
        # Kind labels: the kinds defined here, every other string a row holds as "other".
        metrics = Metrics(kinds=definitions.names())
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
                max_row_bytes=settings.max_row_bytes,
                timezone=settings.export_timezone,
                max_duration_seconds=settings.max_job_duration.total_seconds(),
                object_args=settings.object_args,
                lease_seconds=settings.lease_seconds,
                files=FilesConfig(
                    sources=tuple(settings.files_sources),
                    default_bucket=settings.files_default_bucket,
                    max_per_job=settings.files_max_per_job,
                ),
            ),
            files_s3,
        )
        breaker = StorageBreaker(settings.storage_failure_threshold)
        metrics.storage_breaker_open.set_function(lambda: 0.0 if breaker.allows_claims else 1.0)
        # The queue's one front door: the worker, maintenance and the API all
        # go through it. The API's own connections: a burst of requests never
        # keeps a claim or a completion waiting; its one-statement requests
        # need no reset.
        queue = PgJobStore(
            pool,
            max_per_owner=settings.max_per_owner,
            heartbeat_pool=await queue_pool(1),
            api_pool=await queue_pool(settings.api_pool_size),
        )
        worker = Worker(
            queue,
            exporter,
            WorkerConfig(
                concurrency=settings.concurrency,
                lease_seconds=settings.lease_seconds,
                poll_interval=settings.poll_interval,
                retention_seconds=settings.retention.total_seconds(),
                backoff=policy,
            ),
            breaker=breaker,
            metrics=metrics,
            # Rows inserted directly are counted against their kind's quota here.
            quota_of=definitions.quota_of,
        )

        abort = functools.partial(abort_upload, s3, bucket)
        reaper = Reaper(queue, policy, abort_upload=abort, metrics=metrics)
        chores: list[maintenance.MaintenanceTask] = [
            Retention(queue, functools.partial(delete_object, s3, bucket)),
            Purge(queue, settings.history_retention.total_seconds()),
            UploadsSweep(queue, s3, bucket, settings.s3_prefix, settings.orphan_upload_age),
            _scheduler(queue, definitions, settings),
            WebhookPurge(queue, settings.history_retention.total_seconds()),
            WorkersPrune(queue),
        ]
        deliverer = webhook_deliverer(
            hooks, definitions, await queue_pool(2), metrics, worker.worker_id
        )

        def on_job_event(job_id: uuid.UUID, state: str) -> None:
            worker.on_job_event(job_id, state)
            deliverer.wake()  # the event's webhook was recorded with it

        listener = Listener(
            settings.database_url,
            worker.wake,
            on_job_event,
            timeout_seconds=settings.database_seconds,
        )

        api_ctx = ApiContext(
            queue=queue,
            s3=s3,
            settings=settings,
            definitions=definitions,
            worker_alive=lambda: worker.alive,
            draining=lambda: worker.stopping,
            extra_checks=lambda: {"storage_breaker": breaker.readiness()},
            metrics=metrics,
            worker_id=worker.worker_id,
            breaker=breaker.status,
        )
        try:
            runner, port = await start_api(api_ctx, settings.api_host, settings.api_port)
        except OSError as exc:
            raise StartupError(
                f"cannot serve the API on {settings.api_host}:{settings.api_port} "
                f"({exc.strerror}); set EXPORTD_API_PORT (exportd dev: --port) to a free port"
            ) from None
        stack.push_async_callback(runner.cleanup)

        notifier = Notifier.from_env()
        daemon = Daemon(settings, worker, port, metrics, breaker, notifier)
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, daemon.stop)
                stack.callback(loop.remove_signal_handler, sig)

        background = [
            asyncio.create_task(listener.run(), name="exportd-listener"),
            asyncio.create_task(reaper.run_forever(settings.reap_interval), name="exportd-reaper"),
            asyncio.create_task(
                maintenance.run_forever(chores, settings.maintenance_interval, metrics=metrics),
                name="exportd-maintenance",
            ),
            asyncio.create_task(deliverer.run(), name="exportd-webhooks"),
            asyncio.create_task(
                probe_storage(breaker, s3, bucket, settings.storage_probe_interval, worker.wake),
                name="exportd-storage-probe",
            ),
        ]
        ping_every = watchdog_interval(os.environ, os.getpid())
        if notifier.enabled and ping_every is not None:
            background.append(
                asyncio.create_task(watchdog(notifier, worker, ping_every), name="exportd-watchdog")
            )
        log.info(
            "daemon_started",
            worker_id=worker.worker_id,
            concurrency=settings.concurrency,
            kinds=sorted(definitions.names()),
            api=f"http://{settings.api_host}:{port}",
            database=redact_url(settings.database_url),
            source_database=redact_url(settings.source_url),
            bucket=bucket,
            part_size=part_size,
        )
        work = asyncio.create_task(worker.run(settings.shutdown_grace_seconds))
        deadline: list[asyncio.TimerHandle] = []

        def give_up() -> None:
            log.error("shutdown_deadline_passed", cancelling="everything in flight")
            work.cancel()

        def stop_within(seconds: float) -> None:
            when = loop.time() + seconds
            if deadline and deadline[0].when() <= when:
                return
            for handle in deadline:
                handle.cancel()
            deadline[:] = [loop.call_at(when, give_up)]

        daemon.stop_within = stop_within
        await asyncio.sleep(0)  # the worker loop is running: now say so
        background.append(presence.start(queue, worker.worker_id, settings.concurrency, worker))
        notifier.ready(f"serving on port {port}")
        if on_started is not None:
            on_started(daemon)
        try:
            await work
        except asyncio.CancelledError:
            # Cancelled by the stop deadline: the shutdown goes on. Cancelled
            # from outside: propagate.
            current = asyncio.current_task()
            if not deadline or (current is not None and current.cancelling()):
                raise
        finally:
            for handle in deadline:
                handle.cancel()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await presence.retire(queue, worker.worker_id, SHUTDOWN_BOUND)
            log.info("daemon_stopped", worker_id=worker.worker_id)


def _scheduler(queue: PgJobStore, definitions: Definitions, settings: Settings) -> Scheduler:
    """The scheduler, checking each run's params and options against these definitions. An
    occurrence found within two maintenance intervals (at least a minute) of its
    time is on time; with catch-up 'none', a later one is skipped."""

    def validate(kind: str, params: Any, options: Any) -> list[str]:
        try:
            definitions.require(kind).check(params, options)
        except InvalidParams as exc:
            return [f"{e.field}: {e.message}" if e.field else e.message for e in exc.errors]
        except ExportError as exc:  # an unknown kind
            return [exc.message]
        return []

    grace = timedelta(seconds=max(2 * settings.maintenance_interval, 60.0))
    return Scheduler(queue, validate, catch_up=settings.schedule_catch_up, grace=grace)


def _deadline_settings(settings: Settings) -> dict[str, str]:
    """Server-side deadlines of the queue and API sessions, in milliseconds."""
    return {
        "statement_timeout": str(int(settings.database_seconds * 1000)),
        "idle_in_transaction_session_timeout": str(
            int(settings.idle_in_transaction_seconds * 1000)
        ),
    }


async def _close_pools(pools: list[asyncpg.Pool]) -> None:
    await asyncio.gather(*(_close_pool(pool) for pool in pools))


async def _close_pool(pool: asyncpg.Pool) -> None:
    """Close ``pool``, waiting for its connections at most ``SHUTDOWN_BOUND`` seconds.

    ``Pool.close`` waits for every connection to come back; one held by a
    task stuck on a dead connection would hold the shutdown forever. Past the
    bound the pool is terminated: the server rolls back whatever those
    connections had open, and their row locks are released.
    """
    try:
        await asyncio.wait_for(pool.close(), SHUTDOWN_BOUND)
    except database.DATABASE_ERRORS:
        pool.terminate()


async def _reach(url: str, what: str, wait_seconds: float, **kw: Any) -> asyncpg.Pool:
    try:
        return await database.create_pool_when_reachable(url, what, wait_seconds, **kw)
    except Exception as exc:
        raise StartupError(
            f"cannot reach the {what} at {redact_url(url)}: {redact_text(str(exc), url)}"
        ) from None
