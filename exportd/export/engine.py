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
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from exportd.database import DATABASE_ERRORS, classify_pg_error
from exportd.definitions.kinds import Dataset, Definitions, Kind
from exportd.definitions.literals import UnsafeValue
from exportd.definitions.options.model import DEFAULT_OPTIONS, JobOptions
from exportd.definitions.params.values import to_json
from exportd.errors import ErrorKind, ExportError
from exportd.export.formats import Container, Format, format_for
from exportd.export.interface import JobContext
from exportd.export.keys import object_key, write_probe_key
from exportd.export.progress import Tracker
from exportd.export.row_limit import RowBound, row_too_large, watch_rows
from exportd.export.sources import (
    SinkGuard,
    copy_csv,
    copy_jsonl,
    copy_row_count,
    estimate_rows,
    handler_output,
    start_session,
)
from exportd.export.streams import ByteSink, GzipStream, JsonArrayStream, MemberStats, ZipBundle
from exportd.export.zones import check_zone
from exportd.handlers import HandlerContext
from exportd.limits import MAX_ROW_BYTES_DEFAULT
from exportd.queue.job import ExportResult, UploadRef
from exportd.queue.lease import locked_call_timeout
from exportd.s3.client import S3Client
from exportd.s3.presign import content_disposition
from exportd.s3.upload import ObjectUpload

__all__ = ["ExportOptions", "Exporter", "copy_row_count"]

MANIFEST = "manifest.json"


def commit_request_seconds(lease_seconds: float | None) -> float | None:
    """The deadline of the commit's request: half of what the store gives the whole
    commit under the row lock (``lease.locked_call_timeout``), so that the
    name probe after a failure (half as long again) still ends inside it."""
    if lease_seconds is None:
        return None
    return locked_call_timeout(lease_seconds) / 2


@dataclass(frozen=True)
class ExportOptions:
    bucket: str
    prefix: str
    part_size: int
    parts_in_flight: int
    max_bytes: int | None = None
    # The largest row a dataset may write (EXPORTD_MAX_ROW_BYTES); see exportd.export.row_limit.
    max_row_bytes: int = MAX_ROW_BYTES_DEFAULT
    timezone: str = "UTC"
    # A whole job's limit (query, encoding and upload), unless its kind sets one.
    max_duration_seconds: float | None = None
    # Extra arguments of every object written (server-side encryption).
    object_args: dict[str, str] = field(default_factory=dict)
    # The job's lease: the object's commit is made while the job's row is
    # locked, and must end, name probe included, well inside it.
    lease_seconds: float | None = None


@dataclass
class _Prepared:
    upload: ObjectUpload
    key: str
    rows: int
    filename: str

    async def commit(self) -> ExportResult:
        done = await self.upload.complete()
        return ExportResult(self.key, done.size_bytes, self.rows, done.sha256_hex, self.filename)

    async def abort(self) -> None:
        await self.upload.abort()


@dataclass
class _Job:
    """One export being written: what every step needs."""

    ctx: JobContext
    kind: Kind
    fmt: Format
    values: dict[str, object]
    upload: ObjectUpload
    tracker: Tracker
    options: JobOptions = DEFAULT_OPTIONS


@dataclass
class _Snapshot:
    """The job's read-only transaction: its connection, the guard on its COPY
    sinks, and each SQL dataset's bound statement."""

    conn: asyncpg.Connection
    guard: SinkGuard
    bound: dict[str, str]


class Exporter:
    """The ``Runner`` for definition-based kinds."""

    def __init__(
        self,
        source_pool: asyncpg.Pool,
        s3: S3Client,
        definitions: Definitions,
        options: ExportOptions,
    ) -> None:
        self._pool = source_pool
        self._s3 = s3
        self._definitions = definitions
        self._options = options

    def resolve(self, kind_name: str, fmt: str) -> tuple[Kind, Format]:
        """The kind and format of a job, or a permanent error saying what is wrong."""
        kind = self._definitions.require(kind_name)
        return kind, format_for(kind, fmt)

    async def run(self, ctx: JobContext) -> _Prepared:
        job = ctx.job
        kind, fmt = self.resolve(job.kind, job.format)
        # Params and options together: every problem of both, before any query runs.
        values, options = kind.check(job.params, job.options)
        filename = kind.filename(values, fmt.name)
        key = object_key(self._options.prefix, job.owner, job.id, filename)

        async def started(upload_id: str) -> None:
            await ctx.record_upload(UploadRef(upload_id, key))

        limit, limit_source = self._options.max_bytes, "EXPORTD_S3_MAX_EXPORT_BYTES"
        if kind.max_bytes is not None:
            limit, limit_source = kind.max_bytes, f"max_bytes of kind {kind.name!r}"
        upload = ObjectUpload(
            self._s3,
            self._options.bucket,
            key,
            part_size=self._options.part_size,
            parts_in_flight=self._options.parts_in_flight,
            content_type=fmt.content_type,
            content_disposition=content_disposition(filename),
            on_multipart_started=started,
            extra_args=self._options.object_args,
            max_bytes=limit,
            max_bytes_source=limit_source,
            probe_key=write_probe_key(self._options.prefix),
            commit_seconds=commit_request_seconds(self._options.lease_seconds),
            logger=ctx.log,
        )
        state = _Job(ctx, kind, fmt, values, upload, Tracker(ctx.progress, upload), options)
        try:
            rows = await self._within_duration(state)
        except ExportError:
            # The error is what happened. Should a shutdown interrupt the
            # abort (which then goes on in the background), the job must still
            # end as its error says rather than be handed back as merely
            # interrupted.
            with contextlib.suppress(asyncio.CancelledError):
                await upload.abort()
            raise
        except BaseException:
            await upload.abort()
            raise
        ctx.progress.rows = rows
        return _Prepared(upload, key, rows, filename)

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
                await job.upload.flush()
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
        for dataset in _sql(job.kind):
            try:
                sql = dataset.bind(job.ctx.job.owner, job.values)
            except UnsafeValue as exc:
                # Validation refuses these first; the literal builder refuses them again.
                raise ExportError(
                    ErrorKind.INVALID_PARAMS, f"kind {job.kind.name!r}: {exc}"
                ) from exc
            snapshot.bound[dataset.name] = sql
            job.tracker.estimated_rows += await estimate_rows(conn, sql)
        if job.fmt.container is Container.ZIP:
            return await self._bundle(snapshot, job)
        return await self._single(snapshot, job)

    async def _single(self, snapshot: _Snapshot, job: _Job) -> int:
        container = job.fmt.container
        stream: GzipStream | JsonArrayStream | None = None
        if container is Container.GZIP:
            stream = GzipStream(job.upload)
        elif container is Container.JSON_ARRAY:
            stream = JsonArrayStream(job.upload)
        dataset = job.kind.datasets[0]
        rows = await self._dataset(snapshot, job, dataset, job.fmt.encoding, stream or job.upload)
        if stream is not None:
            await stream.close()
        job.tracker.dataset_done(rows)
        return rows

    async def _bundle(self, snapshot: _Snapshot, job: _Job) -> int:
        generated_at = datetime.now(UTC)
        bundle = ZipBundle(job.upload, generated_at)
        try:
            return await self._members(snapshot, job, bundle, generated_at)
        except BaseException:
            bundle.discard()
            raise

    async def _members(
        self, snapshot: _Snapshot, job: _Job, bundle: ZipBundle, generated_at: datetime
    ) -> int:
        members: list[dict[str, object]] = []
        for dataset in job.kind.datasets:
            member = bundle.member(f"{dataset.name}.{dataset.member_extension}")
            rows = await self._dataset(snapshot, job, dataset, dataset.member_format, member)
            stats = await member.close()
            job.tracker.dataset_done(rows)
            members.append(_member_entry(dataset, stats, rows))
        # Last, so that it describes members that are all written.
        await bundle.add(MANIFEST, _manifest(job, members, generated_at))
        await bundle.close()
        return job.tracker.rows

    async def _dataset(
        self, snapshot: _Snapshot, job: _Job, dataset: Dataset, encoding: str, into: ByteSink
    ) -> int:
        """Write one dataset into ``into``, each record held to the row limit; its rows."""
        written = 0

        def seen(rows: int) -> None:
            nonlocal written
            written = rows
            job.tracker.seen(rows)

        what = f"dataset {dataset.name!r} of kind {job.kind.name!r}"
        limit = self._options.max_row_bytes
        sink = into
        if dataset.output != "bytes":
            # A bytes dataset's blocks are the handler's own; rows are what COPY
            # or a handler's encoder hand over whole.
            sink = RowBound(
                into,
                limit=limit,
                what=what,
                quoted=encoding == "csv",
                header=encoding == "csv",
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
            return await handler_output(dataset, context, encoding, out, seen)
        sql = snapshot.bound[dataset.name]

        def arriving(received: int) -> None:
            error = row_too_large(what, written + 1, received, limit, arriving=True)
            snapshot.guard.abandon(error)

        with watch_rows(snapshot.conn, limit, arriving):
            if encoding == "csv":
                return await copy_csv(snapshot.conn, sql, out, seen)
            shape = f"kind {job.kind.name!r}, dataset {dataset.name!r}"
            return await copy_jsonl(snapshot.conn, sql, out, seen, shape)


def _sql(kind: Kind) -> list[Dataset]:
    return [d for d in kind.datasets if d.compiled is not None]


def _member_entry(dataset: Dataset, stats: MemberStats, rows: int) -> dict[str, object]:
    return {
        "name": stats.name,
        "dataset": dataset.name,
        "format": dataset.extension if dataset.output == "bytes" else dataset.member_format,
        "rows": None if dataset.output == "bytes" else rows,
        "bytes": stats.bytes,
        "sha256": stats.sha256,
    }


def _manifest(job: _Job, members: list[dict[str, object]], generated_at: datetime) -> bytes:
    document = {
        "kind": job.kind.name,
        "owner": job.ctx.job.owner,
        "job_id": str(job.ctx.job.id),
        "params": {name: to_json(value) for name, value in job.values.items()},
        "generated_at": generated_at.isoformat(),
        "members": members,
    }
    return json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
