"""One dataset into the sheets of a workbook: its columns chosen and headed, its rows
from Postgres (``expressions``) or from a Python handler (``cells``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from exportd.definitions.kinds import Dataset, Kind
from exportd.definitions.options.model import JobOptions, LongText
from exportd.definitions.params.spec import InvalidParams, ParamError
from exportd.errors import ErrorKind, ExportError
from exportd.export.columns import Column, choose_columns, statement_columns
from exportd.export.sources import RowsSeen, handler_output
from exportd.export.streams import ByteSink
from exportd.export.xlsx.cells import CellTooLong, encode_rows
from exportd.export.xlsx.expressions import copy_sheet_rows
from exportd.export.xlsx.limits import MAX_CELL_CHARS, column_width
from exportd.export.xlsx.writer import SheetRows, Workbook
from exportd.handlers import HandlerContext


@dataclass(frozen=True)
class SheetJob:
    """One dataset of an xlsx export: where its rows go and how they are shaped."""

    sheet: SheetRows
    wanted: Sequence[str] | None  # the job's columns for the dataset; None for all
    labels: Mapping[str, str]
    zone: str  # the job's time zone (a handler's aware datetimes are shown in it)
    long_text: LongText
    what: str  # names the dataset in errors


def sheet_job(book: Workbook, dataset: str, kind: Kind, options: JobOptions, zone: str) -> SheetJob:
    """Dataset ``dataset`` of a job of ``kind`` as the next sheets of ``book``."""
    what = f"dataset {dataset!r} of kind {kind.name!r}"
    return SheetJob(
        book.dataset(dataset, what),
        options.columns_for(dataset),
        kind.labels,
        zone,
        kind.xlsx.long_text,
        what,
    )


async def sql_sheet(
    conn: asyncpg.Connection, sql: str, job: SheetJob, out: ByteSink, seen: RowsSeen
) -> int:
    """Write the rows of the bound statement ``sql`` into ``job.sheet`` (through ``out``,
    which ends in it); returns the rows. Raises InvalidParams for unknown columns."""
    columns = choose_columns(await statement_columns(conn, sql), job.wanted, job.labels, job.what)
    await job.sheet.begin([c.label for c in columns], [widths(c) for c in columns])
    rows = await copy_sheet_rows(conn, sql, columns, job.long_text, out, seen)
    await job.sheet.finish()
    return rows


async def handler_sheet(
    dataset: Dataset, ctx: HandlerContext, job: SheetJob, out: ByteSink, seen: RowsSeen
) -> int:
    """Write a handler's rows into ``job.sheet`` (through ``out``); returns the rows."""
    encoder = HandlerSheet(job)
    rows = await handler_output(dataset, ctx, "xlsx", out, seen, encoder=encoder.encode)
    await encoder.finish()
    return rows


def widths(column: Column) -> int:
    return column_width(column.label, column.type_name)


# Python types of a handler's values, as the type names the widths are chosen by.
_PY_TYPES: list[tuple[type, str]] = [
    (bool, "bool"),
    (int, "int8"),
    (Decimal, "numeric"),
    (float, "float8"),
    (datetime, "timestamptz"),
    (date, "date"),
]


def _type_name(value: Any) -> str:
    return next((name for kind, name in _PY_TYPES if isinstance(value, kind)), "text")


class HandlerSheet:
    """Encodes a handler's rows for ``sheet``: its columns are the first row's keys (or
    the job's ``columns``, which that row must have), headed by the kind's labels."""

    def __init__(self, job: SheetJob) -> None:
        self._sheet = job.sheet
        self._wanted = job.wanted
        self._labels = job.labels
        self._zone = ZoneInfo(job.zone)
        self._long_text = job.long_text
        self._what = job.what
        self._columns: Sequence[str] | None = None

    async def encode(self, batch: Sequence[Mapping[str, Any]]) -> bytes:
        """``batch`` as sheet rows; the first call writes the header."""
        columns = self._columns
        if columns is None:
            columns = self._columns = self._columns_of(batch[0])
            # A key that is not a str (a handler's int) is headed by its text, as in CSV.
            labels = [self._labels.get(str(c), str(c)) for c in columns]
            await self._sheet.begin(
                labels,
                [
                    column_width(label, _type_name(batch[0].get(c)))
                    for c, label in zip(columns, labels, strict=True)
                ],
            )
        try:
            data = await asyncio.to_thread(encode_rows, batch, columns, self._zone, self._long_text)
        except CellTooLong as exc:
            raise ExportError(
                ErrorKind.TOO_LARGE,
                f"{self._what}: a value of {exc.args[0]:,} characters is longer than Excel's "
                f"{MAX_CELL_CHARS:,} per cell, and the kind's xlsx long_text is 'fail'",
            ) from exc
        return data

    async def finish(self) -> None:
        """End the dataset's sheets (a handler that yielded no rows: a header-less sheet)."""
        if not self._sheet.begun:
            await self._sheet.begin(list(self._wanted or ()), [])
        await self._sheet.finish()

    def _columns_of(self, first: Mapping[str, Any]) -> list[str]:
        if self._wanted is None:
            return list(first)
        # The job names columns by their text, as CSV matches a handler's keys.
        keys = {str(key): key for key in first}
        unknown = [c for c in self._wanted if c not in keys]
        if unknown:
            has = ", ".join(repr(k) for k in first) or "none"
            raise InvalidParams(
                [
                    ParamError(
                        "options.columns",
                        "unknown_column",
                        f"options.columns: {self._what} has no column {name!r} (it has: {has})",
                    )
                    for name in unknown
                ]
            )
        return [keys[c] for c in self._wanted]
