"""``exportd schedule add|list|remove``: recurring exports from the command line.

``add`` checks a schedule by the very rules of ``POST /v1/schedules``
(``exportd.api.schedule_requests``), against the definitions when
``EXPORTD_DEFINITIONS`` is set, and reports every problem at once.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from typing import Any

from exportd.api.requests import RequestInvalid
from exportd.api.schedule_requests import DEFAULT_TIMEZONE, parse_new_schedule
from exportd.api.schedules import new_schedule, schedule_document
from exportd.cli.exits import EXIT_OK, EXIT_USAGE, CliError
from exportd.cli.options import parse_options
from exportd.definitions.kinds import Definitions, Kind
from exportd.definitions.offered_formats import SUPPORTED_FORMATS, formats_of
from exportd.queue import cron
from exportd.queue.schedules import ScheduleRefused
from exportd.settings.model import Settings

# A page of `exportd schedule list`: schedules are few per owner.
_LIST_LIMIT = 1000


def add_parser(sub: Any) -> None:
    """The ``schedule`` verb and its three sub-verbs, on ``sub`` (argparse's subparsers)."""
    schedule = sub.add_parser("schedule", help="recurring exports: add, list, remove")
    verbs = schedule.add_subparsers(dest="schedule_command", required=True, metavar="VERB")
    add = verbs.add_parser(
        "add", help="add a recurring export; prints the schedule as JSON (id, next_run_at...)"
    )
    add.add_argument("kind", help="name of an export definition")
    add.add_argument("--owner", required=True, help="user or tenant whose data is exported")
    add.add_argument("--cron", required=True, help="five fields, e.g. '0 8 * * 1', or @daily")
    add.add_argument(
        "--timezone", default=DEFAULT_TIMEZONE, help="IANA zone the cron is read in (default UTC)"
    )
    add.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a parameter"
    )
    add.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a job option of every job it makes (repeatable), as for enqueue",
    )
    add.add_argument("--format", default=None, help="output format (default: the kind's)")
    add.add_argument("--disabled", action="store_true", help="add it disabled")
    listing = verbs.add_parser("list", help="list schedules, newest first (JSON)")
    listing.add_argument("--owner", default=None, help="whose schedules (default: everyone's)")
    remove = verbs.add_parser("remove", help="delete a schedule (its jobs stay)")
    remove.add_argument("schedule_id")


def run(args: argparse.Namespace, settings: Settings, params: dict[str, Any]) -> int:
    """Run the ``schedule`` sub-verb of ``args``; ``params`` are its parsed --param pairs."""
    verb = args.schedule_command
    if verb == "add":
        return asyncio.run(_add(args, settings, params))
    if verb == "list":
        return asyncio.run(_list(settings, args.owner))
    try:
        schedule_id = uuid.UUID(args.schedule_id)
    except ValueError:
        raise CliError(f"not a schedule id: {args.schedule_id!r}", EXIT_USAGE) from None
    return asyncio.run(_remove(settings, schedule_id))


def _formats(kind: Kind | None) -> tuple[str, ...]:
    return SUPPORTED_FORMATS if kind is None else formats_of(kind)


async def _add(args: argparse.Namespace, settings: Settings, params: dict[str, Any]) -> int:
    from exportd.cli.commands import _queue, load_kinds, print_json

    definitions: Definitions | None = None
    if settings.definitions is not None:
        definitions = load_kinds(settings)
    body: dict[str, Any] = {
        "owner": args.owner,
        "kind": args.kind,
        "params": params,
        "cron": args.cron,
        "timezone": args.timezone,
        "enabled": not args.disabled,
        "options": parse_options(args.option),
    }
    if args.format is not None:
        body["format"] = args.format
    try:
        wanted = parse_new_schedule(body, definitions, _formats, None)
    except RequestInvalid as exc:
        flags = (f"--{e.field.replace('_', '-')}: {e.message}" for e in exc.errors)
        raise CliError("; ".join(flags), EXIT_USAGE) from None
    assert wanted.spec is not None  # a new schedule's cron is always read
    async with _queue(settings.database_url) as queue:
        first = cron.next_after(wanted.spec, await queue.schedules.clock())
        try:
            row = await queue.schedules.create(new_schedule(wanted, first))
        except ScheduleRefused as refused:
            raise CliError(f"the schedule was refused: {refused.cause}", EXIT_USAGE) from None
    print_json(schedule_document(row))
    return EXIT_OK


async def _list(settings: Settings, owner: str | None) -> int:
    from exportd.cli.commands import _queue, print_json

    async with _queue(settings.database_url) as queue:
        rows = await queue.schedules.list(owner, after=None, limit=_LIST_LIMIT)
    print_json([schedule_document(r) for r in rows])
    return EXIT_OK


async def _remove(settings: Settings, schedule_id: uuid.UUID) -> int:
    from exportd.cli.commands import _queue

    async with _queue(settings.database_url) as queue:
        if not await queue.schedules.delete(schedule_id, None):
            raise CliError(f"no schedule {schedule_id}")
    print(f"removed schedule {schedule_id}")
    return EXIT_OK
