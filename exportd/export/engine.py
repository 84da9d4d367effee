"""The export runner: a job's datasets, read in one snapshot, streamed into S3.

Every dataset of a job is read in one ``REPEATABLE READ READ ONLY``
transaction, so a bundle's files agree with each other. SQL datasets are
formatted by Postgres (``COPY``) and handed to a coroutine sink, which keeps
back-pressure all the way from S3 to the server; the format's container
(gzip, a JSON array, a zip bundle) sits between them. Nothing is held but a
block per stream, the part being filled and the parts in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from exportd.database import DATABASE_ERRORS, classify_pg_error
from exportd.definitions.kinds import Dataset, Definitions, Kind
from exportd.definitions.literals import UnsafeValue
from exportd.definitions.options.model import DEFAULT_OPTIONS, JobOptions
from exportd.definitions.params.values import to_json
from exportd.errors import ErrorKind, ExportError
from exportd.export.bundle import BundleFiles, write_bundle
from exportd.export.csv_dialect import check_dialect, file_sink
from exportd.export.file_rows import FilesPlan, plan_files
from exportd.export.formats import Container, Format, dataset_encoding, format_for
from exportd.export.interface import JobContext
from exportd.export.layout import Layout, ManifestHead, layout, wants_split
from exportd.export.parquet.entry import open_parquet, parquet_rows
from exportd.export.progress import Tracker
from exportd.export.projection import project, shaping_for
from exportd.export.row_encoding import row_format_for
from exportd.export.row_limit import RowBound, row_too_large, watch_rows
from exportd.export.sources import (
    SinkGuard,
    copy_csv,
    copy_jsonl,
    copy_row_count,
    count_rows_upto,
    estimate_rows,
    handler_output,
    start_session,
)
from exportd.export.streams import ByteSink, GzipStream, JsonArrayStream, ZstdStream
from exportd.export.target import ExportOptions, PreparedObject, open_upload
from exportd.export.xlsx.sheets import SheetJob, handler_sheet, sheet_job, sql_sheet
from exportd.export.xlsx.writer import Workbook
from exportd.export.zones import check_zone
from exportd.handlers import HandlerContext
from exportd.s3.client import S3Client
from exportd.s3.upload import ObjectUpload

__all__ = ["ExportOptions", "Exporter", "copy_row_count"]


@dataclass
class _Job:
    """One export being written: what every step needs. Its upload (with its key and
    file name) is made inside the snapshot, once the object's layout is known."""

    ctx: JobContext
    kind: Kind
    fmt: Format
    values: dict[str, object]
    options: JobOptions = DEFAULT_OPTIONS
    upload: ObjectUpload | None = None
    key: str = ""
    filename: str = ""
    tracker: Tracker = field(init=False)

    def __post_init__(self) -> None:
        self.tracker = Tracker(self.ctx.progress, self)

    @property
    def bytes_written(self) -> int:
        """What has gone out so far (the tracker's bytes): 0 before the upload exists."""
        return 0 if self.upload is None else self.upload.bytes_written

    @property
    def out(self) -> ObjectUpload:
        assert self.upload is not None, "the upload is made before anything is written"
        return self.upload

    async def abort(self) -> None:
        if self.upload is not None:
            await self.upload.abort()


@dataclass
class _Snapshot:
    """The job's read-only transaction: its connection, the guard on its COPY
    sinks, and each SQL dataset's bound statement."""

    conn: asyncpg.Connection
    guard: SinkGuard
    bound: dict[str, str]
    files: dict[str, FilesPlan] = field(default_factory=dict)


class Exporter:
    """The ``Runner`` for definition-based kinds."""

    def __init__(
        self,
        source_pool: asyncpg.Pool,
        s3: S3Client,
        definitions: Definitions,
        options: ExportOptions,
        files_s3: S3Client | None = None,
    ) -> None:
        self._pool = source_pool
        self._s3 = s3
        # Where files datasets' objects are read: the target's client unless the
        # sources have a store of their own (EXPORTD_FILES_S3_*).
        self._files_s3 = files_s3 or s3
        self._definitions = definitions
        self._options = options

    def resolve(self, kind_name: str, fmt: str) -> tuple[Kind, Format]:
        """The kind and format of a job, or a permanent error saying what is wrong."""
        kind = self._definitions.require(kind_name)
        return kind, format_for(kind, fmt)

    async def run(self, ctx: JobContext) -> PreparedObject:
        job = ctx.job
        kind, fmt = self.resolve(job.kind, job.format)
        # Params and options together: every problem of both, before any query runs.
        values, options = kind.check(job.params, job.options)
        state = _Job(ctx, kind, fmt, values, options)
        try:
            rows = await self._within_duration(state)
        except ExportError:
            # The error is what happened. Should a shutdown interrupt the
            # abort (which then goes on in the background), the job must still
            # end as its error says rather than be handed back as merely
            # interrupted.
            with contextlib.suppress(asyncio.CancelledError):
                await state.abort()
            raise
        except BaseException:
            await state.abort()
            raise
        ctx.progress.rows = rows
        return PreparedObject(state.out, state.key, rows, state.filename)

    def _open_upload(self, job: _Job, fmt: Format) -> None:
        """Name the object (the kind's file name with ``fmt``'s extension) and make its
        upload (``target.open_upload``)."""
        job.upload, job.key, job.filename = open_upload(
            self._s3, self._options, job.kind, job.ctx, job.values, fmt
        )

    async def _within_duration(self, job: _Job) -> int:
        limit = job.kind.max_duration_seconds or self._options.max_duration_seconds
        source = (
            f"max_duration of kind {job.kind.name!r}"
            if job.kind.max_duration_seconds
            else "EXPORTD_MAX_JOB_DURATION"
        )
        try:
            async with asyncio.timeout(limit) as scope:
                rows = await self._export(job)
                # The last part goes up now, so that the commit, done while the
                # job's row is locked, is a single request.
                await job.out.flush()
        except TimeoutError as exc:
            if not scope.expired():
                raise
            raise ExportError(
                ErrorKind.TOO_LONG,
                f"the export ran longer than {limit:g} seconds ({source}) and was stopped "
                f"after {job.tracker.progress.rows:,} rows; narrow it (a shorter date range, "
                "say) or raise the limit",
            ) from exc
        return rows

    async def _export(self, job: _Job) -> int:
        what = f"kind {job.kind.name!r}"
        try:
            async with self._pool.acquire() as conn:
                guard = SinkGuard(conn)
                try:
                    async with conn.transaction(isolation="repeatable_read", readonly=True):
                        try:
                            return await self._read(_Snapshot(conn, guard, {}), job)
                        except asyncio.CancelledError as exc:
                            guard.abandon(exc)
                            raise
                except BaseException:
                    guard.raise_failure()
                    raise
        except ExportError:
            raise
        except DATABASE_ERRORS as exc:
            raise classify_pg_error(exc, what) from exc

    async def _read(self, snapshot: _Snapshot, job: _Job) -> int:
        conn = snapshot.conn
        if job.options.timezone is not None:
            await check_zone(conn, job.options.timezone)
        timezone = job.options.timezone or self._options.timezone
        await start_session(conn, job.kind.timeout_seconds, timezone)
        if any(dataset_encoding(job.fmt, d) == "csv" for d in job.kind.datasets):
            check_dialect(job.options.csv)
        for dataset in _sql(job.kind):
            sql = self._bind(job)(dataset)
            job.tracker.estimated_rows += await estimate_rows(conn, sql)
            # The job's options shape the rows (columns, labels, value options) by a
            # projection over the statement; an unknown column fails here, before any row.
            shaping = shaping_for(job.options, dataset.name, dataset_encoding(job.fmt, dataset))
            what = f"dataset {dataset.name!r} of kind {job.kind.name!r}"
            snapshot.bound[dataset.name] = await project(conn, sql, shaping, job.kind.labels, what)
        # Every files dataset's rows, read and checked against the allowed sources
        # before anything is read from the store or written (exportd.export.file_rows).
        snapshot.files = await plan_files(conn, job.kind, self._bind(job), self._options.files)
        job.tracker.files_expected = sum(len(p.rows) for p in snapshot.files.values())
        plan = layout(job.fmt, job.kind, await self._splits(snapshot, job))
        # Named only now: a split result is a zip, whatever format was asked for.
        self._open_upload(job, plan.fmt)
        if job.fmt.container is Container.XLSX:
            return await self._workbook(snapshot, job, timezone)
        if plan.zipped:
            return await self._bundle(snapshot, job, plan)
        return await self._single(snapshot, job)

    @staticmethod
    def _bind(job: _Job) -> Callable[[Dataset], str]:
        def bind(dataset: Dataset) -> str:
            try:
                return dataset.bind(job.ctx.job.owner, job.values)
            except UnsafeValue as exc:
                # Validation refuses these first; the literal builder refuses them again.
                raise ExportError(
                    ErrorKind.INVALID_PARAMS, f"kind {job.kind.name!r}: {exc}"
                ) from exc

        return bind

    async def _splits(self, snapshot: _Snapshot, job: _Job) -> dict[str, bool]:
        """Which datasets are written in numbered parts (``layout.wants_split``). Each
        SQL dataset is counted in the snapshot, up to ``split_rows + 1``: the rows it
        will write, exactly."""
        most = job.options.split_rows
        if most is None or job.fmt.container is Container.XLSX:
            # A workbook continues on new sheets instead (exportd.export.xlsx).
            return {}
        split: dict[str, bool] = {}
        for dataset in job.kind.datasets:
            if dataset_encoding(job.fmt, dataset) == "parquet":
                continue  # one file, in row groups of split_rows (exportd.export.parquet)
            sql = snapshot.bound.get(dataset.name)
            counted = None if sql is None else await count_rows_upto(snapshot.conn, sql, most + 1)
            split[dataset.name] = wants_split(most, dataset, counted)
        return split

    async def _single(self, snapshot: _Snapshot, job: _Job) -> int:
        container = job.fmt.container
        stream: GzipStream | ZstdStream | JsonArrayStream | None = None
        if container is Container.GZIP:
            stream = GzipStream(job.out)
        elif container is Container.ZSTD:
            stream = ZstdStream(job.out)
        elif container is Container.JSON_ARRAY:
            stream = JsonArrayStream(job.out)
        dataset = job.kind.datasets[0]
        file = file_sink(stream or job.out, job.fmt.encoding, job.options.csv)
        rows = await self._dataset(snapshot, job, dataset, job.fmt.encoding, file)
        await file.close()
        if stream is not None:
            await stream.close()
        job.tracker.dataset_done(rows)
        return rows

    async def _bundle(self, snapshot: _Snapshot, job: _Job, plan: Layout) -> int:
        head = ManifestHead(
            kind=job.kind.name,
            owner=job.ctx.job.owner,
            job_id=str(job.ctx.job.id),
            params={name: to_json(value) for name, value in job.values.items()},
            generated_at=datetime.now(UTC),
            split_rows=job.options.split_rows,
        )

        async def write(dataset: Dataset, encoding: str, into: ByteSink) -> int:
            return await self._dataset(snapshot, job, dataset, encoding, into)

        files = BundleFiles(snapshot.files, self._files_s3, job.kind.name)
        return await write_bundle(
            job.out, plan.members, write, job.tracker, head, job.options.csv, files
        )

    async def _workbook(self, snapshot: _Snapshot, job: _Job, zone: str) -> int:
        book = Workbook(job.out, datetime.now(UTC), job.kind.xlsx, job.options.split_rows)
        try:
            for dataset in job.kind.datasets:
                target = sheet_job(book, dataset.name, job.kind, job.options, zone)
                rows = await self._dataset(snapshot, job, dataset, "xlsx", target.sheet, target)
                job.tracker.dataset_done(rows)
            params = {name: to_json(value) for name, value in job.values.items()}
            await book.close(job.kind.name, job.ctx.job.owner, str(job.ctx.job.id), params)
        except BaseException:
            book.discard()
            raise
        return job.tracker.rows

    async def _dataset(
        self,
        snapshot: _Snapshot,
        job: _Job,
        dataset: Dataset,
        encoding: str,
        into: ByteSink,
        sheet: SheetJob | None = None,
    ) -> int:
        """Write one dataset into ``into``, each record held to the row limit; its rows.
        An xlsx dataset's ``sheet`` says how (``into`` is its sheet)."""
        written = 0

        def seen(rows: int) -> None:
            nonlocal written
            written = rows
            job.tracker.seen(rows)

        what = f"dataset {dataset.name!r} of kind {job.kind.name!r}"
        limit = self._options.max_row_bytes
        csv = job.options.csv
        target = None
        if encoding == "parquet":
            zone = job.options.timezone or self._options.timezone
            target = open_parquet(into, zone, job.kind, job.options.split_rows, what)
        sink = into = target or into
        if dataset.output != "bytes":
            # A bytes dataset's blocks are the handler's own; rows are what COPY
            # or a handler's encoder hand over whole.
            sink = RowBound(
                into,
                limit=limit,
                what=what,
                # An xlsx row is one line, whatever it holds; parquet's come as CSV.
                quoted=encoding in ("csv", "parquet"),
                header=encoding == "csv" and csv.header,
                rows_before=lambda: written,
            )
        # Inside the guard, so that a refused row closes the connection too.
        out = snapshot.guard.wrap(sink)
        if dataset.handler is not None:
            context = HandlerContext(
                owner=job.ctx.job.owner,
                params=job.values,
                connection=snapshot.conn,
                kind=job.kind.name,
                dataset=dataset.name,
                log=job.ctx.log,
            )
            if sheet is not None:
                return await handler_sheet(dataset, context, sheet, out, seen)
            if target is not None:
                raise ExportError(
                    ErrorKind.UNSUPPORTED_FORMAT,
                    f"{what}: a handler's rows carry no column types for a parquet file",
                )
            fmt = row_format_for(job.options, job.kind.labels, dataset.name, encoding, what)
            return await handler_output(dataset, context, encoding, out, seen, fmt)
        sql = snapshot.bound[dataset.name]

        def arriving(received: int) -> None:
            error = row_too_large(what, written + 1, received, limit, arriving=True)
            snapshot.guard.abandon(error)

        with watch_rows(snapshot.conn, limit, arriving):
            if sheet is not None:
                return await sql_sheet(snapshot.conn, sql, sheet, out, seen)
            if target is not None:
                labels = job.kind.labels
                return await parquet_rows(snapshot.conn, sql, target, out, seen, labels, what)
            if encoding == "csv":
                return await copy_csv(snapshot.conn, sql, out, seen, csv)
            shape = f"kind {job.kind.name!r}, dataset {dataset.name!r}"
            return await copy_jsonl(snapshot.conn, sql, out, seen, shape)


def _sql(kind: Kind) -> list[Dataset]:
    return [d for d in kind.datasets if d.compiled is not None and d.output != "files"]
