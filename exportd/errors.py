"""Error kinds, as recorded in ``exportd.jobs.error_kind``.

Every failure of a job is one of these kinds. The kind decides whether the job
is tried again: bad input never is, an outage always is (until the job's
attempts are spent). Kinds are decided by cause, not by the layer that
reported them: S3 refusing a job's own request (its key, a header built from
its file name, its size) is that job's permanent failure, and so is S3
refusing access (a missing permission or a bucket policy may concern one
tenant's keys only), while S3 being down or throttling concerns every job and
every tenant alike (``STORAGE_OUTAGES``, which feed the storage circuit
breaker).
"""

from __future__ import annotations

from enum import StrEnum

from exportd.limits import ERROR_MAX_CHARS

# Of a message cut to its bound, the end kept: where messages say what to do
# ("...; fix the definition and enqueue again").
_KEPT_TAIL_CHARS = 200


class ErrorKind(StrEnum):
    # Permanent: the same job would fail the same way again.
    INVALID_PARAMS = "invalid_params"
    UNKNOWN_KIND = "unknown_kind"
    UNSUPPORTED_FORMAT = "unsupported_format"
    QUERY_ERROR = "query_error"
    # S3 refused access (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch,
    # a 403): a permission or a bucket policy to fix. Not an outage: a policy may
    # deny one tenant's keys only, so it never opens the breaker either.
    ACCESS_DENIED = "access_denied"
    TOO_LARGE = "too_large"
    # S3 refused this job's own request: a key or name the store cannot hold,
    # a header built from the job's file name that is too large, an argument
    # it rejects. Another attempt would send the same request.
    STORAGE_REJECTED = "storage_rejected"
    # The whole job ran longer than its kind's max_duration (or EXPORTD_MAX_JOB_DURATION).
    TOO_LONG = "too_long"
    # The kind's quota: the owner asked for too many of its exports in its window
    # (a row inserted directly; the API and the CLI refuse such a job up front).
    QUOTA_EXCEEDED = "quota_exceeded"
    # A stored object a files dataset names is missing, or differs from the size or
    # checksum its row gives, and its kind says so fails the job (missing_files = "fail").
    NOT_FOUND = "not_found"
    # Retryable: an outage or an accident of timing.
    STORAGE_UNAVAILABLE = "storage_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    LEASE_EXPIRED = "lease_expired"
    TIMEOUT = "timeout"
    INTERNAL = "internal"
    # Neither: somebody asked for the job to stop.
    CANCELLED = "cancelled"


RETRYABLE: frozenset[ErrorKind] = frozenset(
    {
        ErrorKind.STORAGE_UNAVAILABLE,
        ErrorKind.DATABASE_UNAVAILABLE,
        ErrorKind.LEASE_EXPIRED,
        ErrorKind.TIMEOUT,
        ErrorKind.INTERNAL,
    }
)


# Failures that say the store is unusable for everyone (down, throttling, a
# missing bucket): only these feed the storage circuit breaker. A job's own
# request being refused never does.
STORAGE_OUTAGES: frozenset[ErrorKind] = frozenset({ErrorKind.STORAGE_UNAVAILABLE})


def is_retryable(kind: ErrorKind) -> bool:
    return kind in RETRYABLE


def bounded_message(text: str) -> str:
    """``text`` in at most ``ERROR_MAX_CHARS`` characters (exportd/limits.py): when longer,
    its start and its last 200 characters around a '…'.

    A message may quote a caller's string whole (Postgres quotes the value it could
    not read), and it is stored in the job's ``error`` column and logged: neither may
    grow with what a caller sent. The end is kept as well as the start because that
    is where a message says what to do.
    """
    if len(text) <= ERROR_MAX_CHARS:
        return text
    head = ERROR_MAX_CHARS - _KEPT_TAIL_CHARS - 1
    return text[:head] + "…" + text[-_KEPT_TAIL_CHARS:]


class ExportError(Exception):
    """A failure with a kind and a message a person can act on, at most
    ``ERROR_MAX_CHARS`` characters long (``bounded_message``), whatever it quotes."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        message = bounded_message(message)
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def retryable(self) -> bool:
        return is_retryable(self.kind)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"
