"""The quota of a job's kind, decided before the job's first query runs.

``POST /v1/jobs`` and ``exportd enqueue`` refuse a job over its kind's quota
before it is inserted; a row the application inserts directly reaches the
worker unchecked. The worker asks the queue to count (``JobStore.quota_retry_at``)
and fails a job over the quota for good, saying when it can be asked for
again. The count only looks at jobs created before this one, so the answer
is the same on every attempt, whichever daemon claims it and in what order.
"""

from __future__ import annotations

from collections.abc import Callable

from exportd.errors import ErrorKind, ExportError
from exportd.queue.interface import JobStore
from exportd.queue.job import Job
from exportd.quotas import Quota, refusal_message

# The quota of a kind, by its name (None: none, or no such kind; an unknown
# kind then fails as unknown_kind when the export starts).
QuotaOf = Callable[[str], Quota | None]


def no_quotas(kind: str) -> Quota | None:
    """No kind has a quota (a worker built without definitions)."""
    return None


async def check_quota(store: JobStore, job: Job, quota_of: QuotaOf) -> None:
    """Return when ``job`` is within its kind's quota (or its kind has none).

    Raises ExportError QUOTA_EXCEEDED (permanent) with the time the job can be
    asked for again, or DATABASE_UNAVAILABLE (retried) when the count fails.
    """
    quota = quota_of(job.kind)
    if quota is None:
        return
    try:
        when = await store.quota_retry_at(job, quota)
    except Exception as exc:
        raise ExportError(
            ErrorKind.DATABASE_UNAVAILABLE,
            f"could not count the jobs against the quota: {exc.__class__.__name__}: {exc}",
        ) from exc
    if when is not None:
        raise ExportError(ErrorKind.QUOTA_EXCEEDED, refusal_message(job.kind, quota, when))
