"""`exportd check`'s look at the definitions' SQL: every statement a job of each kind
would send, parsed and planned (never run) by the source database."""

from __future__ import annotations

from typing import Any

import asyncpg

from exportd import database
from exportd.definitions.kinds import Dataset, Definitions, Kind
from exportd.definitions.offered_formats import writes_json
from exportd.definitions.params.schema import PROBE_TEXT, probe_value
from exportd.errors import ExportError
from exportd.export.file_rows import check_file_columns
from exportd.export.sources import csv_statement, estimate_rows, json_statement, start_session
from exportd.redaction import redact_text, redact_url
from exportd.settings.model import Settings


async def prepare_queries(settings: Settings, definitions: Definitions, report: Any) -> None:
    """Have the source database parse and plan every statement a job of each kind
    would send, so that a mistake in a definition is found at deploy time, not in a
    user's job at 2 AM."""
    try:
        conn = await database.connect(settings.source_url, timeout=10)
    except Exception as exc:
        url = settings.source_url
        report(False, "source database", f"{redact_url(url)}: {redact_text(str(exc), url)}")
        return
    try:
        for name in definitions.names():
            kind = definitions[name]
            for dataset in kind.datasets:
                what = (
                    f"kind {name}"
                    if len(kind.datasets) == 1
                    else f"kind {name}, dataset {dataset.name}"
                )
                if dataset.compiled is None:
                    report(True, what, f"handler {dataset.handler_ref} imports")
                    continue
                try:
                    async with conn.transaction(isolation="repeatable_read", readonly=True):
                        await _check_statements(conn, settings, kind, dataset)
                except asyncpg.PostgresError as exc:
                    report(False, what, f"query does not prepare: {exc}")
                except ExportError as exc:
                    report(False, what, exc.message)
                else:
                    report(True, what, "query prepares")
    finally:
        await conn.close()


async def _check_statements(
    conn: asyncpg.Connection, settings: Settings, kind: Kind, dataset: Dataset
) -> None:
    """Parse and plan, without running them, the very statements the daemon sends for
    ``dataset``: its statement bound with a probe value of each parameter (hostile text
    for strings) by the daemon's binding function, inside the daemon's COPY wrappers,
    in a transaction with the daemon's settings. Raises what Postgres raises, and
    ExportError for columns a JSON record cannot hold."""
    await start_session(conn, kind.timeout_seconds, settings.export_timezone)
    values = {p: probe_value(spec) for p, spec in kind.params.items()}
    sql = dataset.bind(PROBE_TEXT, values)
    if dataset.output == "files":
        columns = (await conn.prepare(sql)).get_attributes()
        what = f"kind {kind.name!r}, dataset {dataset.name!r}"
        check_file_columns([(c.name, c.type.name) for c in columns], what, types=True)
        return
    statements = [csv_statement(sql)]
    if writes_json(kind, dataset):
        what = f"kind {kind.name!r}, dataset {dataset.name!r}"
        statements.append(await json_statement(conn, sql, what))
    for statement in statements:
        # Parse is all Postgres does with a COPY until it runs: the whole text's grammar.
        await conn.prepare(statement.copy)
        # The query inside it is analysed and planned, not run.
        await estimate_rows(conn, statement.query)
