"""``exportd workers [--json]``: the daemons alive now, and what each runs.

One line per daemon (its worker id, version, host and pid, since when it
runs, its last heartbeat, its running jobs out of its concurrency), then one
indented line per running job (id, kind, owner, progress, rows, attempt).
``--json`` prints the document ``GET /v1/workers`` answers instead. Reads only;
exits 0 (also when no daemon is alive: the line says so).

``exportd.cli.commands`` (which imports the daemon) is imported when the verb
runs, not when the parser is built, as ``main`` does for the other verbs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

from exportd.api.workers import worker_document
from exportd.cli.exits import EXIT_OK
from exportd.queue.workers import JobProgress, WorkerStatus
from exportd.settings.model import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``workers`` verb, on the command line's subparsers."""
    verb = sub.add_parser("workers", help="list the daemons alive now and the jobs each runs")
    verb.add_argument("--json", action="store_true", help="print GET /v1/workers's document")


# C0 and C1 controls and DEL: a terminal acts on them (ESC and CSI start
# sequences that clear the screen or set the title). Owners and kinds may hold
# any character in the table, since the application writes them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """``text`` with each control character as a ``\\xNN`` escape."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _job_line(job: JobProgress) -> str:
    return (
        f"  {job.id} {shown(job.kind)} for {shown(job.owner)}: {job.progress}%,"
        f" {job.rows_written} rows,"
        f" attempt {job.attempts}/{job.max_attempts}"
    )


def render(found: list[WorkerStatus]) -> list[str]:
    """The lines ``exportd workers`` prints (pure)."""
    if not found:
        return ["no daemon is alive"]
    lines: list[str] = []
    for w in found:
        lines.append(
            f"{shown(w.worker_id)} v{shown(w.version)} on {shown(w.host)} (pid {w.pid}),"
            f" since {w.started_at.isoformat(timespec='seconds')},"
            f" heartbeat {w.heartbeat_age_seconds:.0f} s ago,"
            f" running {len(w.running)}/{w.concurrency}"
        )
        lines += [_job_line(j) for j in w.running]
    return lines


async def workers(settings: Settings, as_json: bool) -> int:
    """Print the daemons alive now (see the module's docstring)."""
    from exportd.cli.commands import _queue

    async with _queue(settings.database_url) as queue:
        found = await queue.workers()
    if as_json:
        print(json.dumps({"workers": [worker_document(w) for w in found]}, indent=2))
    else:
        print("\n".join(render(found)))
    return EXIT_OK


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``exportd workers`` as parsed by ``add_parser``."""
    return asyncio.run(workers(settings, args.json))
