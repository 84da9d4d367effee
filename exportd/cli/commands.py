"""What each CLI verb does, separated from argument parsing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from exportd import database
from exportd.api.views import job_document, runs_document, with_download
from exportd.cli import job_checks as checks
from exportd.cli.exits import EXIT_FAILED, EXIT_OK, EXIT_TRY_LATER, EXIT_USAGE, CliError
from exportd.cli.query_checks import prepare_queries
from exportd.daemon.serve import StartupError, serve
from exportd.daemon.webhooks import webhook_config
from exportd.definitions import offered_formats
from exportd.definitions.kinds import Definitions
from exportd.definitions.loader import DefinitionError, load_definitions
from exportd.definitions.webhook_url import shown
from exportd.errors import ExportError
from exportd.export.memory import keep_large_buffers_mapped
from exportd.logs import configure_logging
from exportd.queue.enqueue import (
    DEFAULT_FORMAT,
    DuplicateBusy,
    JobRefused,
    NewJob,
    QuotaExceeded,
    problems,
)
from exportd.queue.migrations import migrate as apply_migrations
from exportd.queue.migrations import pending_migrations
from exportd.queue.postgres import PgJobStore
from exportd.quotas import refusal_message
from exportd.redaction import redact_text, redact_url
from exportd.s3.client import open_s3_client
from exportd.s3.objects import check_bucket
from exportd.s3.presign import download_signer, open_presigner
from exportd.settings.model import Settings, SettingsError
from exportd.tracing.setup import tracing_report


def print_json(doc: Any) -> None:
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(doc, indent=2, ensure_ascii=False))


TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})


def load_kinds(settings: Settings) -> Definitions:
    if settings.definitions is None:
        raise CliError(
            "EXPORTD_DEFINITIONS is not set: point it at a TOML file or directory of "
            "export definitions (see docs/definitions.md)",
            EXIT_USAGE,
        )
    try:
        return load_definitions(settings.definitions)
    except DefinitionError as exc:
        problems = "\n  ".join(exc.problems)
        raise CliError(f"invalid export definitions:\n  {problems}", EXIT_USAGE) from None


async def _connect(url: str) -> asyncpg.Connection:
    try:
        return await database.connect(url, timeout=10)
    except Exception as exc:
        raise CliError(
            f"cannot reach the database at {redact_url(url)}: {redact_text(str(exc), url)}"
        ) from None


# The deadline of each statement a command sends on the queue, in seconds: a
# row or advisory lock another session holds (a daemon's round, an
# application's open transaction, a psql session) or a hung server ends the
# command with a message instead of leaving the operator's shell waiting.
CLI_STATEMENT_SECONDS = 30.0


@contextlib.asynccontextmanager
async def _queue(url: str) -> AsyncIterator[PgJobStore]:
    """The queue on one connection of its own, closed when the block ends; each
    statement waits at most ``CLI_STATEMENT_SECONDS``, else CliError EXIT_TRY_LATER."""
    statement_seconds = CLI_STATEMENT_SECONDS
    try:
        pool = await database.create_pool(
            url, min_size=1, max_size=1, timeout=10, command_timeout=statement_seconds
        )
    except Exception as exc:
        raise CliError(
            f"cannot reach the database at {redact_url(url)}: {redact_text(str(exc), url)}"
        ) from None
    try:
        yield PgJobStore(pool)
    except TimeoutError:
        raise CliError(
            f"the database did not answer within {statement_seconds:g} s (a row or lock "
            "another session holds, or a server that hangs); the command stopped; try again",
            EXIT_TRY_LATER,
        ) from None
    finally:
        await pool.close()


def run(settings: Settings) -> int:
    definitions = load_kinds(settings)
    settings.bucket()
    configure_logging(settings.log_format, settings.log_level)
    keep_large_buffers_mapped()
    try:
        asyncio.run(serve(settings, definitions))
    except StartupError as exc:
        raise CliError(str(exc)) from None
    return EXIT_OK


async def migrate(settings: Settings) -> int:
    conn = await _connect(settings.database_url)
    try:
        applied = await apply_migrations(conn)
    finally:
        await conn.close()
    if applied:
        for m in applied:
            print(f"applied {m.version:04d}_{m.name}")
    else:
        print("schema is up to date")
    return EXIT_OK


async def check(settings: Settings) -> int:
    """Every check runs, and every problem is reported, before the exit code says so."""
    failures = 0

    def report(ok: bool, what: str, detail: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {what}: {detail}")

    definitions: Definitions | None = None
    try:
        definitions = load_kinds(settings)
        report(True, "definitions", f"{len(definitions)} kind(s): {', '.join(definitions.names())}")
    except CliError as exc:
        report(False, "definitions", str(exc))

    try:
        conn = await database.connect(settings.database_url, timeout=10)
    except Exception as exc:
        url = settings.database_url
        report(False, "database", f"{redact_url(url)}: {redact_text(str(exc), url)}")
    else:
        try:
            missing = await pending_migrations(conn)
            report(
                not missing,
                "database",
                "schema up to date"
                if not missing
                else f"{len(missing)} migration(s) pending; run `exportd migrate`",
            )
        finally:
            await conn.close()
        if not missing:
            from exportd.cli.pauses import report_paused

            await report_paused(settings, report)

    traced, tracing = tracing_report(show_owner=settings.trace_owner)
    report(traced, "tracing", tracing)
    if definitions is not None:
        _check_formats(definitions, report)
        checks.check_quotas(settings, definitions, report)
        _check_webhooks(settings, definitions, report)
        await prepare_queries(settings, definitions, report)

    try:
        bucket = settings.bucket()
        async with contextlib.AsyncExitStack() as stack:
            s3 = await open_s3_client(settings, stack)
            await check_bucket(s3, bucket)
        report(True, "bucket", f"{bucket} reachable")
    except Exception as exc:
        report(False, "bucket", str(getattr(exc, "message", exc)))
    return EXIT_OK if failures == 0 else EXIT_FAILED


def _check_formats(definitions: Definitions, report: Any) -> None:
    """Whether parquet can be written here (``exportd[parquet]``): a problem only for a
    kind whose zip holds a parquet member, which could never run without it."""
    missing = offered_formats.not_installed("parquet")
    if missing is None:
        report(True, "formats", f"parquet available ({offered_formats.PARQUET_EXTRA} installed)")
        return
    needing = [
        kind.name
        for kind in definitions.values()
        if any(d.member_format == "parquet" for d in kind.datasets)
    ]
    detail = f"{missing}; kinds with parquet members: {', '.join(needing)}" if needing else missing
    report(not needing, "formats", detail)


def _check_webhooks(settings: Settings, definitions: Definitions, report: Any) -> None:
    """Where job events go and how many secrets sign them (never the secrets, nor
    a URL's path or query, which may hold a token)."""
    try:
        config = webhook_config(settings, definitions)
    except SettingsError as exc:
        report(False, "webhooks", str(exc).removeprefix("invalid settings: "))
        return
    own = [f"{n} -> {shown(k.webhook_url)}" for n, k in definitions.items() if k.webhook_url]
    if config.default_url is None and not own:
        report(True, "webhooks", "off (neither EXPORTD_WEBHOOK_URL nor a kind's webhook_url)")
        return
    default = shown(config.default_url) if config.default_url else "none"
    report(
        True,
        "webhooks",
        f"default target {default}; kinds with their own: {', '.join(own) or 'none'}; "
        f"signed with {len(config.keys)} secret(s)",
    )


async def enqueue(
    settings: Settings,
    *,
    kind: str,
    owner: str,
    params: dict[str, Any],
    fmt: str | None,
    priority: int,
    max_attempts: int,
    dedupe_key: str | None,
    wait: bool,
    wait_seconds: float | None,
    options: dict[str, Any] | None = None,
) -> int:
    job = NewJob(
        owner,
        kind,
        params,
        format=fmt or DEFAULT_FORMAT,  # without definitions, the table's default
        priority=priority,
        max_attempts=max_attempts,
        dedupe_key=dedupe_key,
        options=options or {},
    )
    # What the table would refuse, by the rules POST /v1/jobs applies (dedupe
    # works the same by either door), then what the kind refuses: every
    # problem at once, each named as it was typed.
    wrong = problems(job)
    found = [f"{checks.argument_name(name)} {why}" for name, why in wrong]
    quota = None
    if settings.definitions is not None and not any(name == "kind" for name, _ in wrong):
        # The daemon checks again; this fails early, here.
        checked = checks.check_with_definition(load_kinds(settings), job, fmt, found)
        if checked is not None:
            job = dataclasses.replace(job, format=checked[0])
            quota = checked[1]
    elif settings.definitions is None:
        found.extend(checks.option_shape_problems(job.options))
    if found:
        raise CliError("; ".join(found), EXIT_USAGE)
    async with _queue(settings.database_url) as queue:
        await checks.check_zone(queue, job.options)
        try:
            enqueued = await queue.enqueue(job, quota)
        except QuotaExceeded as over:
            message = refusal_message(kind, over.quota, over.retry_at)
            raise CliError(message, EXIT_TRY_LATER) from None
        except JobRefused as refused:
            raise CliError(f"the job was refused: {refused.cause}", EXIT_USAGE) from None
        except DuplicateBusy as busy:
            raise CliError(str(busy)) from None
        if not enqueued.created:
            raise CliError(f"owner {owner!r} already has a live job with dedupe key {dedupe_key!r}")
        job_id = enqueued.row["id"]
        print(job_id, flush=True)
        if not wait:
            return EXIT_OK
        return await _wait(settings, queue, job_id, wait_seconds)


def _progress_line(row: Any) -> str:
    mib = row["bytes_written"] / (1024 * 1024)
    return (
        f"{row['state']}: attempt {row['attempts']}/{row['max_attempts']}, "
        f"{mib:.1f} MiB, {row['rows_written']} rows, {row['progress']}%"
    )


async def _wait(
    settings: Settings, queue: PgJobStore, job_id: uuid.UUID, wait_seconds: float | None
) -> int:
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    last = ""
    while True:
        row = await queue.job(job_id)
        # Ours, and not ended yet at the last look: only ended jobs are purged.
        assert row is not None
        line = _progress_line(row)
        if line != last:
            print(line, file=sys.stderr, flush=True)
            last = line
        if row["state"] in TERMINAL:
            return await _report_final(settings, row)
        if deadline is not None and time.monotonic() > deadline:
            print(f"still {row['state']} after {wait_seconds:g}s; it goes on", file=sys.stderr)
            return EXIT_FAILED
        await asyncio.sleep(0.5)


async def _report_final(settings: Settings, row: Any) -> int:
    if row["state"] != "completed":
        print(
            f"job {row['state']}: {row['error_kind'] or ''} {row['error'] or ''}".rstrip(),
            file=sys.stderr,
        )
        return EXIT_FAILED
    doc = await _with_url(settings, job_document(row))
    print(
        f"completed: {doc['row_count']} rows, {doc['size_bytes']} bytes, "
        f"sha256 {doc['checksum_sha256']}",
        file=sys.stderr,
    )
    print(doc.get("download_url") or doc["object_key"])
    return EXIT_OK


async def _with_url(settings: Settings, doc: dict[str, Any]) -> dict[str, Any]:
    if settings.s3_bucket is None:
        return doc
    try:
        async with contextlib.AsyncExitStack() as stack:
            s3 = await open_s3_client(settings, stack)
            sign = download_signer(await open_presigner(settings, s3))
            return await with_download(doc, sign, settings.download_url_ttl)
    except ExportError as exc:
        print(f"exportd: cannot presign a download URL: {exc.message}", file=sys.stderr)
        return doc


async def status(settings: Settings, job_id: uuid.UUID) -> int:
    async with _queue(settings.database_url) as queue:
        row = await queue.job(job_id)
        runs = await queue.attempts(job_id)
    if row is None:
        raise CliError(f"no job {job_id}")
    doc = job_document(row)
    doc["runs"] = runs_document(runs)
    print_json(await _with_url(settings, doc))
    return EXIT_OK
