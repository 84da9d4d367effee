"""The ``exportd`` command line: run, migrate, check, enqueue, status, retry,
schedule, pause, resume, workers, dev."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from exportd import __version__
from exportd.cli import pauses, schedules, workers
from exportd.cli.exits import EXIT_USAGE, CliError
from exportd.cli.options import parse_options
from exportd.queue.enqueue import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY
from exportd.settings.environment import load_settings
from exportd.settings.model import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exportd",
        description="Export daemon: claims export jobs from Postgres, streams them to S3.",
    )
    parser.add_argument("--version", action="version", version=f"exportd {__version__}")
    parser.add_argument(
        "--env-file",
        default=".env",
        metavar="PATH",
        help="read EXPORTD_* settings from this file too (default: .env, if present)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="run the daemon (worker, maintenance, HTTP API) in the foreground")
    sub.add_parser("migrate", help="create or upgrade the schema (safe to run concurrently)")
    sub.add_parser(
        "check", help="validate settings and definitions, reach the database and the bucket"
    )

    enqueue = sub.add_parser("enqueue", help="enqueue an export")
    enqueue.add_argument("kind", metavar="KIND", help="name of an export definition")
    enqueue.add_argument("--owner", required=True, help="user or tenant whose data is exported")
    enqueue.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter (repeatable); values are validated against the definition",
    )
    enqueue.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a job option (repeatable): timezone=Europe/Zurich, csv.profile=excel, "
        "split_rows=100000; VALUE is read as JSON when it parses, else as text",
    )
    enqueue.add_argument(
        "--format",
        default=None,
        help="output format (default: csv, or zip for a kind that only fits in a bundle)",
    )
    enqueue.add_argument("--priority", type=int, default=DEFAULT_PRIORITY, help="higher runs first")
    enqueue.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS)
    enqueue.add_argument("--dedupe-key", default=None)
    enqueue.add_argument(
        "--wait", action="store_true", help="show progress until the job ends, then its URL"
    )
    enqueue.add_argument(
        "--timeout", type=float, default=None, help="with --wait: give up after this many seconds"
    )

    status = sub.add_parser("status", help="show a job, with a download URL when completed")
    status.add_argument("job_id")

    schedules.add_parser(sub)
    retry = sub.add_parser(
        "retry", help="run a failed or cancelled job again (attempts reset, earlier runs kept)"
    )
    retry.add_argument("job_id")
    pauses.add_parsers(sub)
    workers.add_parser(sub)

    dev = sub.add_parser(
        "dev",
        help="run on embedded defaults: a local S3 server, local Postgres, demo data",
    )
    dev.add_argument(
        "--dir", default=".exportd-dev", type=Path, help="state directory (default .exportd-dev)"
    )
    dev.add_argument("--port", type=int, default=8080, help="HTTP API port (default 8080)")
    dev.add_argument(
        "--database", default="exportd_dev", help="database to create and use (default exportd_dev)"
    )
    dev.add_argument(
        "--embedded-postgres",
        action="store_true",
        help="start an embedded Postgres even when one answers on localhost:5432",
    )
    dev.add_argument(
        "--definitions",
        type=Path,
        default=None,
        help="export definitions (a TOML file or folder) instead of the demo's",
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    env_file = args.env_file if Path(args.env_file).is_file() else None
    return load_settings(env_file=env_file)


def _parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise CliError(f"--param takes NAME=VALUE, got {pair!r}", EXIT_USAGE)
        params[name.strip()] = value
    return params


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except CliError as exc:
        print(f"exportd: {exc}", file=sys.stderr)
        return exc.code
    except SettingsError as exc:
        print(f"exportd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
        # A command pointed at a database nobody migrated: one line, not a traceback.
        print(
            f"exportd: {exc}: the database has no exportd schema; run `exportd migrate` "
            "against it, or point EXPORTD_DATABASE_URL (or --env-file) at the right one",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _retry(settings: Settings, raw_id: str) -> int:
    from exportd.cli import retry

    try:
        job_id = uuid.UUID(raw_id)
    except ValueError:
        raise CliError(f"not a job id: {raw_id!r}", EXIT_USAGE) from None
    return asyncio.run(retry.retry(settings, job_id))


def _dispatch(args: argparse.Namespace) -> int:
    from exportd.cli import commands

    if args.command == "dev":
        from exportd.cli import dev

        return dev.main(
            args.dir, args.port, args.database, args.embedded_postgres, args.definitions
        )
    settings = _settings(args)
    if args.command == "run":
        return commands.run(settings)
    if args.command == "migrate":
        return asyncio.run(commands.migrate(settings))
    if args.command == "check":
        return asyncio.run(commands.check(settings))
    if args.command == "enqueue":
        return asyncio.run(
            commands.enqueue(
                settings,
                kind=args.kind,
                owner=args.owner,
                params=_parse_params(args.param),
                fmt=args.format,
                priority=args.priority,
                max_attempts=args.max_attempts,
                dedupe_key=args.dedupe_key,
                wait=args.wait,
                wait_seconds=args.timeout,
                options=parse_options(args.option),
            )
        )
    if args.command == "schedule":
        return schedules.run(args, settings, _parse_params(getattr(args, "param", [])))
    if args.command == "status":
        try:
            job_id = uuid.UUID(args.job_id)
        except ValueError:
            raise CliError(f"not a job id: {args.job_id!r}", EXIT_USAGE) from None
        return asyncio.run(commands.status(settings, job_id))
    if args.command == "retry":
        return _retry(settings, args.job_id)
    if args.command in ("pause", "resume"):
        return pauses.main(settings, args)
    if args.command == "workers":
        return workers.main(settings, args)
    raise CliError(f"unknown command {args.command!r}", EXIT_USAGE)
