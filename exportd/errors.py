"""Error kinds, as recorded in ``exportd.jobs.error_kind``.

Every failure of a job is one of these kinds. The kind decides whether the job
is tried again: bad input never is, an outage always is (until the job's
attempts are spent).
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
    ACCESS_DENIED = "access_denied"
    TOO_LARGE = "too_large"
    # The whole job ran longer than its kind's max_duration (or EXPORTD_MAX_JOB_DURATION).
    TOO_LONG = "too_long"
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
