"""What ``exportd enqueue`` and ``exportd check`` check of a job and of a kind
before they reach the database: a new job against its kind's definition, named
as the user typed it, and each kind's quota against the history kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exportd.cli.exits import EXIT_USAGE, CliError
from exportd.definitions.kinds import Definitions
from exportd.definitions.offered_formats import default_format, formats_of
from exportd.definitions.options.resolve import shape_problems, unknown_zone
from exportd.errors import ExportError
from exportd.export.formats import format_for
from exportd.queue.enqueue import NewJob
from exportd.queue.postgres import PgJobStore
from exportd.quotas import Quota
from exportd.settings.model import Settings

# How `exportd enqueue` names each value of a job: as the user typed it.
_ARGUMENTS = {"kind": "KIND"}


def argument_name(name: str) -> str:
    """A job's field (``queue.enqueue.problems``) as `exportd enqueue` takes it:
    ``KIND``, ``--owner``, ``--max-attempts``..."""
    return _ARGUMENTS.get(name, f"--{name.replace('_', '-')}")


def check_with_definition(
    definitions: Definitions, job: NewJob, fmt: str | None, found: list[str]
) -> tuple[str, Quota | None] | None:
    """The job's format (the kind's default when none was asked for) and the kind's
    quota, once the kind exists; its problems (an unknown kind, invalid params or
    options, a format it cannot fill) appended to ``found``."""
    try:
        definition = definitions.require(job.kind)
    except ExportError as exc:
        found.append(exc.message)
        return None
    try:
        definition.check(job.params, job.options)
    except ExportError as exc:
        found.append(exc.message)
    chosen = fmt or default_format(formats_of(definition))
    try:
        format_for(definition, chosen)
    except ExportError as exc:
        found.append(exc.message)
    return chosen, definition.quota


def option_shape_problems(options: dict[str, Any]) -> list[str]:
    """The problems of ``options`` read without a kind (no definitions to check against):
    each option's own value and the document's size, as ``POST /v1/jobs`` checks the
    options of a kind it does not know. Without it, a value the worker could never take
    would be stored and fail only when the job runs."""
    return [problem.message for problem in shape_problems(options)]


async def check_zone(queue: PgJobStore, options: dict[str, Any]) -> None:
    """CliError unless the time zone ``options`` name (if any) is one Postgres knows."""
    zone = options.get("timezone")
    if isinstance(zone, str) and zone not in await queue.zones.names():
        raise CliError(unknown_zone(zone).message, EXIT_USAGE)


def check_quotas(
    settings: Settings, definitions: Definitions, report: Callable[[bool, str, str], None]
) -> None:
    """``exportd check``: each kind's quota, reported ok, or failed when its window
    is longer than EXPORTD_HISTORY_RETENTION (it only sees the rows the table
    keeps, and would forget jobs purged before it ends)."""
    kept = settings.history_retention
    for kind in definitions.values():
        quota = kind.quota
        if quota is None:
            continue
        fits = quota.per <= kept
        detail = (
            f"at most {quota.max} per {quota.per_text}"
            if fits
            else f"per {quota.per_text} is longer than EXPORTD_HISTORY_RETENTION ({kept}): "
            "jobs purged before the window ends would stop counting; shorten per or keep "
            "history longer"
        )
        report(fits, f"kind {kind.name} quota", detail)
