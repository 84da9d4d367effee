"""What the client raises: one class per cause a caller acts on differently.

HTTP answers map by status (``ApiError.from_answer``); the SQL helpers raise
``InvalidJob`` and ``DuplicateJob`` alike, so an application handles a refused
job the same way whichever door it used.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from exportd_client._models import FieldProblem, Job


class ExportdError(Exception):
    """Anything the client raises on purpose."""


class InvalidJob(ExportdError, ValueError):
    """A job (or request) that cannot be taken as given; ``problems`` lists every
    problem at once, each naming its field, in the daemon's own words."""

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field or 'request'}: {p.message}" for p in self.problems))


class DuplicateJob(ExportdError):
    """The owner already has a live (pending or processing) job with this
    ``dedupe_key``: ``job`` is that job, which the caller may follow instead."""

    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__(f"owner {job.owner!r} already has live job {job.id} with this dedupe_key")


class ExportFailed(ExportdError):
    """``wait`` saw the job end without an export: ``failed`` or ``cancelled``, or
    ``expired`` (its file already deleted). ``error_kind`` is the job's (for a
    job that has none, its state), ``job`` the job as it ended."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.error_kind: str = job.error_kind or job.state
        super().__init__(f"job {job.id} ended {job.state} ({self.error_kind}): {job.error or ''}")


class ApiError(ExportdError):
    """An error answer of the HTTP API: ``status``, its stable ``code`` (the
    body's ``error``), ``message``, and the body as sent (``body``)."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any]) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        super().__init__(f"{status} {code}: {message}")


class BadRequest(ApiError, InvalidJob):
    """400: ``problems`` lists every problem the daemon found in the request."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any]) -> None:
        # The daemon's errors are [{"field", "message"}]; a proxy's 400 may be anything.
        found = body.get("errors")
        entries = found if isinstance(found, list) else []
        self.problems = [
            FieldProblem(str(e.get("field", "")), str(e.get("message", message)))
            for e in entries
            if isinstance(e, dict)
        ] or [FieldProblem("", message)]
        self.status, self.code, self.message, self.body = status, code, message, body
        # Both bases set what they hold; the message is said once, with every problem.
        listed = "; ".join(f"{p.field or 'request'}: {p.message}" for p in self.problems)
        Exception.__init__(self, f"{status} {code}: {listed}")


class InvalidAnswer(ApiError):
    """An answer that is not the daemon's: a success or a redirect whose body is
    not the JSON document the route gives (an empty body, a proxy's or a captive
    portal's HTML page, a 3xx elsewhere), or a download answered without its
    redirect. ``code`` is ``invalid_answer``; ``message`` says what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, "invalid_answer", message, {})


class Unauthorized(ApiError):
    """401: no token, or not one of the daemon's (``EXPORTD_API_TOKENS``)."""


class NotFound(ApiError):
    """404: no such job, or another owner's under the client's owner scope."""


class Conflict(ApiError):
    """409: the job's state does not allow the request (``state``; ``job`` when
    the daemon sent it): cancelling a finished job, downloading a running one."""

    @property
    def state(self) -> str | None:
        state = self.body.get("state") or (self.body.get("job") or {}).get("state")
        return None if state is None else str(state)


class Gone(ApiError):
    """410: the export expired and its file was deleted."""


class RateLimited(ApiError):
    """429: the owner has had the kind's quota of jobs; ask again after
    ``retry_after`` seconds (``Retry-After``), at ``retry_at`` (UTC)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        body: dict[str, Any],
        retry_after: float | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        super().__init__(status, code, message, body)
        self.retry_after = retry_after
        self.retry_at = retry_at


class Unavailable(ApiError):
    """503: the daemon's database or bucket does not answer, or it is busy; retry
    after ``retry_after`` seconds when the daemon says."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        body: dict[str, Any],
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, body)
        self.retry_after = retry_after


class DownloadFailed(ExportdError):
    """``download`` could not fetch the export from the bucket: a status other
    than 200, or a transfer cut (``__cause__`` is httpx's error). ``written``
    bytes had reached a file object given as ``dest``; a path is left as it was."""

    def __init__(self, message: str, written: int) -> None:
        self.written = written
        super().__init__(f"download failed after {written} bytes: {message}")


class WaitTimeout(ExportdError, TimeoutError):
    """``wait`` ran out of time; ``job`` is the job as last seen."""

    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__(f"job {job.id} is still {job.state}")
