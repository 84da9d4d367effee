"""``exportd retry JOB_ID``: run a failed or cancelled job again.

The same statement as ``POST /v1/jobs/{id}/retry`` (``exportd.queue.requeue``):
the job goes back to ``pending`` now, its attempts reset, its earlier runs
kept. Exits 0 once it is pending; 1 when there is no such job or it cannot
be retried (the message says why); 2 for a malformed id or settings.
"""

from __future__ import annotations

import getpass
import uuid

import structlog

from exportd.api.views import job_document, runs_document
from exportd.cli.commands import _queue, print_json
from exportd.cli.exits import EXIT_FAILED, EXIT_OK, CliError
from exportd.logs import configure_logging
from exportd.queue.requeue import RetryRefused
from exportd.settings.model import Settings

_log = structlog.get_logger("exportd.cli")


def _operator() -> str:
    """Who runs the command, for the log line: the login name, if there is one."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in this environment (a container's uid)
        return "unknown"


async def retry(settings: Settings, job_id: uuid.UUID) -> int:
    """Make the job pending again; print it (with its runs) as JSON on stdout, and
    log who did it (stderr, in the daemon's log format)."""
    configure_logging(settings.log_format, settings.log_level)
    async with _queue(settings.database_url) as queue:
        try:
            row = await queue.requeue(job_id)
        except RetryRefused as refused:
            raise CliError(refused.message, EXIT_FAILED) from None
        if row is None:
            raise CliError(f"no job {job_id}", EXIT_FAILED)
        runs = await queue.attempts(job_id)
    _log.info(
        "job_retried",
        job_id=str(job_id),
        owner=row["owner"],
        kind=row["kind"],
        max_attempts=row["max_attempts"],
        by="cli",
        operator=_operator(),
    )
    doc = job_document(row)
    doc["runs"] = runs_document(runs)
    print_json(doc)
    return EXIT_OK
