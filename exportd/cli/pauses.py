"""``exportd pause KIND|--all [--reason R]`` and ``exportd resume KIND|--all``.

A paused kind's pending jobs are claimed by no daemon until it is resumed;
running jobs finish (``exportd.queue.pauses``). The pause is recorded as made
by the OS user and host that ran the command, and logged (``kind_paused``,
``kind_resumed``) on stderr; stdout says what changed, in one line a person
reads. Both verbs are idempotent. Exits: 0 done (or nothing to do), 1 when
``resume KIND`` leaves the kind paused because every kind is, 2 for a kind
this deployment does not define or a reason the table would refuse.

``exportd.cli.commands`` (which imports the daemon) is imported when a verb
runs, not when the parser is built, as ``main`` does for the other verbs.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import socket
from collections.abc import Callable

from exportd import limits
from exportd.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from exportd.errors import ExportError
from exportd.logs import configure_logging
from exportd.queue.pauses import ALL_KINDS, Pause, PauseRefused, state_of
from exportd.settings.model import Settings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``pause`` and ``resume`` verbs, on the command line's subparsers."""
    pause = sub.add_parser(
        "pause", help="stop claiming a kind's jobs (or every kind's); running jobs finish"
    )
    which = pause.add_mutually_exclusive_group(required=True)
    which.add_argument("kind", nargs="?", help="name of an export definition")
    which.add_argument("--all", action="store_true", help="pause every kind")
    pause.add_argument(
        "--reason", default=None, help="why, shown by GET /v1/kinds and in the daemon's log"
    )
    resume = sub.add_parser("resume", help="claim a paused kind's jobs again (or every kind's)")
    which = resume.add_mutually_exclusive_group(required=True)
    which.add_argument("kind", nargs="?", help="name of an export definition")
    which.add_argument(
        "--all", action="store_true", help="resume every kind (every pause is lifted)"
    )


def operator() -> str:
    """Who runs this command: ``user@host``, within ``limits.PAUSED_BY_MAX_BYTES``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = f"uid {os.getuid()}"
    who = f"{user}@{socket.gethostname()}"
    # Cut on a character boundary: a host name is the OS's, not ours to refuse.
    return who.encode()[: limits.PAUSED_BY_MAX_BYTES].decode(errors="ignore")


def _kind(settings: Settings, kind: str) -> str:
    """``kind`` when this deployment may pause it: defined, when definitions are set;
    else at least a kind's name."""
    from exportd.cli.commands import load_kinds
    from exportd.definitions.loader import KIND_NAME_RE

    if settings.definitions is not None:
        try:
            load_kinds(settings).require(kind)
        except ExportError as exc:
            raise CliError(exc.message, EXIT_USAGE) from None
    elif not KIND_NAME_RE.fullmatch(kind):
        raise CliError(f"{kind!r} is not a kind's name ([a-z][a-z0-9_-]*)", EXIT_USAGE)
    return kind


def _since(pause: Pause) -> str:
    why = f": {pause.reason}" if pause.reason else ""
    return f"since {pause.paused_at.isoformat(timespec='seconds')} by {pause.paused_by}{why}"


async def pause(settings: Settings, kind: str | None, reason: str | None) -> int:
    """Pause ``kind`` (None: every kind)."""
    from exportd.cli.commands import _queue

    target = ALL_KINDS if kind is None else _kind(settings, kind)
    configure_logging(settings.log_format, settings.log_level)
    what = "every kind" if kind is None else kind
    async with _queue(settings.database_url) as queue:
        try:
            found, created = await queue.pause_kind(target, paused_by=operator(), reason=reason)
        except PauseRefused as refused:
            raise CliError(str(refused), EXIT_USAGE) from None
    if created:
        undo = "exportd resume --all" if kind is None else f"exportd resume {kind}"
        print(f"paused {what}: no daemon claims its jobs until `{undo}`")
    else:
        print(f"{what} was paused already, {_since(found)}")
    return EXIT_OK


async def resume(settings: Settings, kind: str | None) -> int:
    """Resume ``kind`` (None: every kind, every pause lifted)."""
    from exportd.cli.commands import _queue

    if kind is not None:
        _kind(settings, kind)
    configure_logging(settings.log_format, settings.log_level)
    async with _queue(settings.database_url) as queue:
        if kind is None:
            lifted = await queue.resume_all_kinds(resumed_by=operator())
            kinds = ", ".join("every kind" if p.kind == ALL_KINDS else p.kind for p in lifted)
            print(f"resumed {kinds}" if lifted else "no kind was paused")
            return EXIT_OK
        own = await queue.resume_kind(kind, resumed_by=operator())
        state = state_of(kind, await queue.paused_kinds())
    if state.every_kind is not None:
        print(
            f"{kind} is still paused: every kind is, {_since(state.every_kind)}; "
            "`exportd resume --all` resumes every kind"
        )
        return EXIT_FAILED
    print(f"resumed {kind}" if own else f"{kind} was not paused")
    return EXIT_OK


async def report_paused(settings: Settings, report: Callable[[bool, str, str], None]) -> None:
    """``exportd check``'s line on paused kinds: not a failure, but worth a look
    before asking why a kind's jobs wait."""
    from exportd.cli.commands import _queue

    async with _queue(settings.database_url) as queue:
        found = await queue.paused_kinds()
    lines = [f"{'every kind' if p.kind == ALL_KINDS else p.kind} {_since(p)}" for p in found]
    report(True, "paused kinds", "; ".join(lines) if lines else "none")


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``exportd pause`` or ``exportd resume`` as parsed by ``add_parsers``."""
    kind = None if args.all else args.kind
    if args.command == "pause":
        return asyncio.run(pause(settings, kind, args.reason))
    return asyncio.run(resume(settings, kind))
