"""The worker loop: claim jobs into free slots, keep their leases, record how they end.

The loop knows nothing of Postgres or S3: it talks to a ``JobStore``
(exportd/queue/interface.py) and a ``Runner`` (exportd/export/interface.py).
The leases are kept by ``worker.leases``, failures and stops recorded by
``worker.outcomes``; the loop schedules. What it guarantees:

- at most ``concurrency`` exports at once, claimed in one statement each round;
  a job whose object is committed, and whose row only awaits its update,
  leaves its slot to the next claim (at most ``concurrency`` such jobs), so
  claims overlap the recording of completions;
- every running job's lease renewed every third of the lease, and at least
  every ``lease.PROGRESS_SECONDS`` with its progress, by a task that does not
  depend on the export making progress (exportd/queue/lease.py);
- a job whose renewal reports it gone (cancelled, reaped, or its owner
  changed by the application) is stopped at once and its upload aborted; so
  is one whose lease could not be renewed for half a lease (the database was
  unreachable or too slow), before the lease can run out;
- a job whose params could not be decoded (``Job.params_error``) fails alone
  as ``invalid_params`` without running, and one over its kind's quota
  (``worker.quota_gate``) as ``quota_exceeded``;
- no claims while the storage breaker it feeds with each job's outcome is
  open (S3 failing), so an outage does not spend every job's attempts;
- on stop: no new claims at once, running jobs get a grace period, then they
  are stopped and handed back without spending an attempt; a second stop
  (``hurry``) stops them at once, whatever they are doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from exportd.errors import ErrorKind, ExportError
from exportd.export.interface import JobContext, PreparedExport, Runner
from exportd.metrics import Metrics
from exportd.queue.backoff import BackoffPolicy, exponential_delay
from exportd.queue.interface import JobStore
from exportd.queue.job import Job, Progress, UploadRef
from exportd.queue.lease import heartbeat_interval
from exportd.tracing.jobs import attempt_ended, attempt_span
from exportd.tracing.seam import span
from exportd.worker.breaker import StorageBreaker
from exportd.worker.lease_keeper import LeaseKeeper
from exportd.worker.outcomes import Outcomes
from exportd.worker.quota_gate import QuotaOf, check_quota, no_quotas
from exportd.worker.running import RunningJob, StopReason


def new_worker_id() -> str:
    """Host, pid and a random suffix: unique per process start, even in a reused pod."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class JobLostError(Exception):
    """The job is no longer this worker's (cancelled or reaped): stop working on it."""


@dataclass
class WorkerConfig:
    concurrency: int = 4
    lease_seconds: float = 30.0
    poll_interval: float = 2.0
    retention_seconds: float = 7 * 86400.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    # Between failed claims (database unreachable), up to this long.
    claim_retry_max: float = 30.0


class Worker:
    def __init__(
        self,
        store: JobStore,
        runner: Runner,
        config: WorkerConfig,
        *,
        worker_id: str | None = None,
        breaker: StorageBreaker | None = None,
        logger: Any = None,
        metrics: Metrics | None = None,
        quota_of: QuotaOf = no_quotas,
    ) -> None:
        self.store = store
        self.quota_of = quota_of
        # Jobs' outcomes feed it; while it is open, nothing is claimed.
        self.breaker = breaker
        self.metrics = metrics or Metrics()
        self.runner = runner
        self.config = config
        self.worker_id = worker_id or new_worker_id()
        self.log = (logger or structlog.get_logger()).bind(worker_id=self.worker_id)
        self.outcomes = Outcomes(store, self.worker_id, self.metrics, config.backoff)
        self.leases = LeaseKeeper(
            store, self.worker_id, config.lease_seconds, self.metrics, self.log
        )
        self._running: dict[uuid.UUID, RunningJob] = {}
        # Every job task, including one superseded in _running by a new claim
        # of the same job, so that none is left behind at shutdown.
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._alive = False

    # --- signals from outside --------------------------------------------

    def wake(self) -> None:
        """Work may be waiting (a notification arrived)."""
        self._wake.set()

    def on_job_event(self, job_id: uuid.UUID, state: str) -> None:
        """A job reached a terminal state; stop it at once if it runs here."""
        running = self._running.get(job_id)
        if running is not None and state == "cancelled" and not running.finishing:
            self._stop(running, StopReason.CANCELLED)

    def request_stop(self) -> None:
        """Stop claiming now; running jobs get the grace period."""
        self._stopping.set()
        self._wake.set()

    def hurry(self) -> None:
        """Cut the grace period short (a second signal): stop every running job now,
        those committing or recording their outcome too.

        A job stopped while recording its outcome is left to the reaper; one
        stopped while its completing transaction runs is completed, or not,
        as that transaction ends (it has its own deadline).
        """
        self.request_stop()
        self._hurry.set()
        for running in list(self._running.values()):
            self._stop(running, StopReason.SHUTDOWN)

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def running_jobs(self) -> list[Job]:
        return [r.job for r in self._running.values()]

    # --- the loop ----------------------------------------------------------

    async def run(self, grace_seconds: float) -> None:
        """Claim and run jobs until ``request_stop``, then drain and return."""
        self._alive = True
        beat = asyncio.create_task(self._heartbeat_loop(), name="exportd-heartbeat")
        try:
            await self._claim_loop()
            await self._drain(grace_seconds)
        finally:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
            self._alive = False

    async def _claim_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wake.clear()
            # A slot is an export: once a job's object is committed (no more
            # S3 or source work), the next claim may take its slot while its
            # row is recorded. Jobs recording their rows are bounded too, so
            # that a slow database cannot pile them up.
            free = min(
                self.config.concurrency - self._producing(),
                2 * self.config.concurrency - len(self._running),
            )
            claimed: list[Job] = []
            if free > 0 and (self.breaker is None or self.breaker.allows_claims):
                sent = time.monotonic()
                try:
                    claimed = await self.store.claim(
                        self.worker_id, free, self.config.lease_seconds
                    )
                    failures = 0
                except Exception as exc:
                    failures += 1
                    self.metrics.error("database", "claim")
                    delay = exponential_delay(
                        failures, self.config.poll_interval, self.config.claim_retry_max
                    )
                    self.log.warning("claim_failed", error=repr(exc), retry_in=round(delay, 2))
                    await self._sleep_unless_stopping(delay)
                    continue
                for job in claimed:
                    self._start(job, sent)
            # Fewer jobs than free slots means the queue had no more ready;
            # a full house means only a finishing job can make room. Either
            # way, wait: a notification, a finished job or the poll wakes us.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_interval)

    def _producing(self) -> int:
        return sum(1 for r in self._running.values() if not r.committed)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _start(self, job: Job, claim_sent: float) -> None:
        log = self.log.bind(**job.log_fields(self.worker_id))
        previous = self._running.get(job.id)
        if previous is not None:
            # Claimed again while an earlier claim still runs here (the row was
            # handed back behind this worker's back): the earlier one is stale,
            # and its guarded writes would fail anyway.
            previous.log.warning("job_claimed_again")
            self._stop(previous, StopReason.LOST)
        running = RunningJob(job=job, progress=Progress(), renewal_sent=claim_sent, log=log)
        self._running[job.id] = running
        self.metrics.jobs_claimed.labels(job.kind).inc()
        self.metrics.jobs_in_flight.set(len(self._running))
        self._idle.clear()
        running.task = asyncio.create_task(self._execute(running), name=f"exportd-job-{job.id}")
        self._tasks.add(running.task)
        running.task.add_done_callback(self._tasks.discard)

    async def _drain(self, grace_seconds: float) -> None:
        if self._running:
            self.log.info("draining", jobs=len(self._running), grace_seconds=grace_seconds)
            idle = asyncio.create_task(self._idle.wait())
            hurry = asyncio.create_task(self._hurry.wait())
            await asyncio.wait({idle, hurry}, timeout=grace_seconds, return_when="FIRST_COMPLETED")
            idle.cancel()
            hurry.cancel()
        for running in list(self._running.values()):
            if not running.finishing:
                self._stop(running, StopReason.SHUTDOWN)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _stop(self, running: RunningJob, reason: StopReason) -> None:
        if running.stop_reason is None and running.task is not None:
            running.stop_reason = reason
            running.task.cancel(reason.value)

    # --- one job -------------------------------------------------------------

    async def _execute(self, running: RunningJob) -> None:
        # The attempt's span (exportd.tracing.jobs); a no-op with tracing off.
        with attempt_span(running.job, running.claimed_at):
            await self._attempt(running)

    async def _attempt(self, running: RunningJob) -> None:
        job = running.job
        log = running.log
        started = time.monotonic()
        prepared: PreparedExport | None = None

        async def record_upload(ref: UploadRef) -> None:
            try:
                recorded = await self.store.record_upload(job, self.worker_id, ref)
            except Exception as exc:
                # A queue-database failure, not the export's query failing.
                raise ExportError(
                    ErrorKind.DATABASE_UNAVAILABLE,
                    f"could not record the upload on the job: {exc.__class__.__name__}: {exc}",
                ) from exc
            if not recorded:
                raise JobLostError(f"job {job.id} is no longer owned by {self.worker_id}")

        ctx = JobContext(job, self.worker_id, running.progress, log, record_upload)
        log.info("job_started", format=job.format, priority=job.priority)
        try:
            undecodable = [e for e in (job.params_error, job.options_error) if e is not None]
            if undecodable:
                raise ExportError(ErrorKind.INVALID_PARAMS, "; ".join(undecodable))
            await check_quota(self.store, job, self.quota_of)
            with span("stream"):
                prepared = await self.runner.run(ctx)
            running.finishing = True
            completing = self.store.begin_completion(
                job,
                self.worker_id,
                self.config.retention_seconds,
                self.config.lease_seconds,
                prepared.commit,
            )
            try:
                with span("complete"):
                    if await completing.committed:
                        # Only the row's update is left: the slot can take the
                        # next job. A failed commit keeps the slot until the
                        # failure is recorded.
                        running.committed = True
                        self._wake.set()
                    result = await completing.outcome
            finally:
                # Stopped while it completes: the completion goes on, unheard.
                completing.give_up()
            if result is None:
                await prepared.abort()
                log.warning("job_lost", during="completion")
                return
            self._observe(None, "")
            attempt_ended("completed", rows=result.row_count, size_bytes=result.size_bytes)
            seconds = time.monotonic() - started
            self.metrics.job_completed(job.kind, seconds, result.size_bytes, result.row_count)
            log.info(
                "job_completed",
                rows=result.row_count,
                bytes=result.size_bytes,
                object_key=result.object_key,
                seconds=round(seconds, 3),
            )
        # On every failure path the row is settled first and the upload aborted
        # after: an abort can take long when S3 is struggling, and the lease
        # must not run out while the outcome is still unrecorded.
        except asyncio.CancelledError:
            reason = running.stop_reason
            if reason is None:
                if prepared is not None:
                    await prepared.abort()
                raise  # cancelled by our caller, not by the worker: propagate
            await self.outcomes.stopped(job, reason, log)
            if prepared is not None:
                await prepared.abort()
        except JobLostError:
            if prepared is not None:
                await prepared.abort()
            log.warning("job_lost", during="export")
        except ExportError as exc:
            await self._record_failure(running, exc, log)
            if prepared is not None:
                await prepared.abort()
        except Exception as exc:
            log.exception("job_crashed")
            error = ExportError(
                ErrorKind.INTERNAL,
                f"unexpected {exc.__class__.__name__}: {exc} "
                "(see the daemon log for the traceback)",
            )
            await self._record_failure(running, error, log)
            if prepared is not None:
                await prepared.abort()
        finally:
            if self._running.get(job.id) is running:
                del self._running[job.id]
            self.metrics.jobs_in_flight.set(len(self._running))
            if not self._running:
                self._idle.set()
            self._wake.set()

    async def _record_failure(self, running: RunningJob, exc: ExportError, log: Any) -> None:
        # Recording the outcome is not interrupted by a shutdown: an update
        # cut off half-way would leave the job to the reaper, one attempt poorer.
        running.finishing = True
        self._observe(exc.kind, exc.message)
        await self.outcomes.failed(running.job, exc, log)

    def _observe(self, kind: ErrorKind | None, message: str) -> None:
        if self.breaker is None:
            return
        was_open = not self.breaker.allows_claims
        if self.breaker.record(kind, message):
            self.metrics.storage_breaker_opened.inc()
            self.log.error(
                "storage_breaker_opened",
                failures=self.breaker.threshold,
                error=message,
            )
        elif was_open and self.breaker.allows_claims:
            self.log.info("storage_breaker_closed", by="job_completed")
            self._wake.set()

    # --- leases --------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        interval = heartbeat_interval(self.config.lease_seconds)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.heartbeat_once()
            except Exception:
                self.log.exception("heartbeat_crashed")

    async def heartbeat_once(self) -> None:
        """Renew every running job's lease; stop the jobs this worker lost."""
        live = [r for r in self._running.values() if not r.finishing and r.stop_reason is None]
        await self.leases.renew(live, self._stop)
