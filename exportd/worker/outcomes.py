"""How a job that did not complete ends: retried, failed or handed back.

The decision is ``exportd.queue.backoff.decide``'s; this module records it
through the ``JobStore`` (every write guarded on the claim), and logs and
counts what the store actually did, which may differ: the application may
have lowered ``max_attempts`` while the job ran, and the store then fails a
job the worker meant to retry or hand back.
"""

from __future__ import annotations

from typing import Any

from exportd.errors import ErrorKind, ExportError
from exportd.metrics import Metrics
from exportd.queue.backoff import BackoffPolicy, Retry, decide
from exportd.queue.interface import JobStore
from exportd.queue.job import Job, LetGo
from exportd.tracing.jobs import attempt_ended, attempt_failed
from exportd.worker.running import StopReason

# Why the store failed a job the worker handed back: the application lowered
# max_attempts, while the job ran, to the attempts already made.
_NO_ATTEMPT_LEFT = "max_attempts was lowered while the job ran and leaves no attempt"


class Outcomes:
    """Records the failures and stops of one worker's jobs."""

    def __init__(
        self, store: JobStore, worker_id: str, metrics: Metrics, backoff: BackoffPolicy
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.metrics = metrics
        self.backoff = backoff

    async def stopped(self, job: Job, reason: StopReason, log: Any) -> None:
        """``job`` was stopped by the worker for ``reason``: hand it back at a
        shutdown (without spending an attempt); log a cancel or a loss."""
        attempt_ended({StopReason.SHUTDOWN: "released"}.get(reason, str(reason)))
        if reason is StopReason.SHUTDOWN:
            try:
                went = await self.store.release(job, self.worker_id)
            except Exception as exc:
                # The lease will run out and the reaper will hand the job back.
                log.warning("job_release_failed", error=repr(exc))
                return
            if went is LetGo.FAILED:
                stopped = ExportError(
                    ErrorKind.LEASE_EXPIRED, "the daemon shut down while the job ran"
                )
                self._log_failed(job, stopped, log, _NO_ATTEMPT_LEFT, recorded=True)
                return
            log.info("job_released", released=went is not None)
        elif reason is StopReason.CANCELLED:
            self.metrics.jobs_cancelled.labels(job.kind).inc()
            log.info("job_cancelled")
        else:
            log.warning("job_lost", during="export")

    async def failed(self, job: Job, exc: ExportError, log: Any) -> None:
        """``job`` failed with ``exc``: retry it after its backoff, or fail it for
        good. A database error is logged, never raised: the job keeps its lease
        until it runs out, and the reaper then retries it."""
        decision = decide(exc.kind, job.attempt, job.max_attempts, self.backoff)
        attempt_failed(str(exc.kind), "retry" if isinstance(decision, Retry) else "failed")
        try:
            if isinstance(decision, Retry):
                went = await self.store.retry(
                    job, self.worker_id, decision.delay_seconds, exc.message, exc.kind
                )
                if went is LetGo.FAILED:
                    # Decided with the max_attempts of the claim; the application
                    # lowered it since, and the store failed the job instead.
                    self._log_failed(job, exc, log, _NO_ATTEMPT_LEFT, recorded=True)
                    return
                if went is LetGo.PENDING:
                    self.metrics.job_failed(job.kind, exc.kind, retried=True)
                log.warning(
                    "job_retry",
                    error_kind=str(exc.kind),
                    error=exc.message,
                    retry_in=round(decision.delay_seconds, 1),
                    recorded=went is not None,
                )
            else:
                # A retryable kind failing for good has spent its attempts: the
                # message says so (and never that it will be retried).
                message = exc.message
                if exc.retryable:
                    message = f"{message}; {decision.reason}"
                recorded = await self.store.fail(job, self.worker_id, message, exc.kind)
                self._log_failed(job, exc, log, decision.reason, recorded=recorded)
        except Exception as db_exc:
            self.metrics.error("database", "record_outcome")
            # The row keeps its lease until it runs out; the reaper then
            # retries the job. Nothing is lost, only delayed.
            log.error("job_outcome_not_recorded", error_kind=str(exc.kind), error=repr(db_exc))

    def _log_failed(
        self, job: Job, exc: ExportError, log: Any, reason: str, *, recorded: bool
    ) -> None:
        if recorded:
            self.metrics.job_failed(job.kind, exc.kind, retried=False)
        log.error(
            "job_failed",
            error_kind=str(exc.kind),
            error=exc.message,
            reason=reason,
            recorded=recorded,
        )
