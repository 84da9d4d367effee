"""The export runner: a job's query, formatted by Postgres, streamed into S3.

``format='csv'`` uses ``COPY (query) TO STDOUT (FORMAT csv, HEADER)``: Postgres
formats the rows, several times faster than encoding them in Python, and
asyncpg hands the bytes to a coroutine sink, which keeps back-pressure all the
way from S3 to the server. Nothing is held but the part being filled and the
parts in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg

from exportd.db import classify_pg_error
from exportd.definitions import Definitions, Kind
from exportd.errors import ErrorKind, ExportError
from exportd.jobs import ExportResult, UploadRef
from exportd.sqlfiles import queries
from exportd.storage import S3Client, content_disposition
from exportd.upload import ObjectUpload
from exportd.worker import JobContext

SUPPORTED_FORMATS = ("csv",)
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8"}


def object_key(prefix: str, owner: str, job_id: uuid.UUID, filename: str) -> str:
    """``{prefix}/{owner}/{job_id}/{filename}``, with the owner made path-safe.

    Owners are caller-chosen strings: percent-encoding keeps a '/' or '..'
    in one from reaching into another owner's folder.
    """
    parts = [quote(owner, safe="@._-"), str(job_id), quote(filename, safe=" @._-()")]
    if prefix:
        parts.insert(0, prefix)
    return "/".join(parts)


def copy_row_count(status: str) -> int:
    """Rows copied, from a ``COPY n`` command status."""
    try:
        return int(status.rsplit(" ", 1)[-1])
    except ValueError:
        return 0


@dataclass(frozen=True)
class ExportOptions:
    bucket: str
    prefix: str
    part_size: int
    parts_in_flight: int
    max_bytes: int | None = None
    timezone: str = "UTC"


@dataclass
class _Prepared:
    upload: ObjectUpload
    key: str
    rows: int

    async def commit(self) -> ExportResult:
        done = await self.upload.complete()
        return ExportResult(self.key, done.size_bytes, self.rows, done.sha256_hex)

    async def abort(self) -> None:
        await self.upload.abort()


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

    def resolve(self, kind_name: str, fmt: str) -> Kind:
        """The kind of a job, or a permanent error saying what is wrong."""
        kind = self._definitions.require(kind_name)
        if fmt not in SUPPORTED_FORMATS:
            raise ExportError(
                ErrorKind.UNSUPPORTED_FORMAT,
                f"format {fmt!r} is not supported by this daemon "
                f"(supported: {', '.join(SUPPORTED_FORMATS)})",
            )
        return kind

    async def run(self, ctx: JobContext) -> _Prepared:
        job = ctx.job
        kind = self.resolve(job.kind, job.format)
        values = kind.validate(job.params)
        sql, args = kind.bind(job.owner, values)
        filename = kind.filename(values, job.format)
        key = object_key(self._options.prefix, job.owner, job.id, filename)

        async def started(upload_id: str) -> None:
            await ctx.record_upload(UploadRef(upload_id, key))

        upload = ObjectUpload(
            self._s3,
            self._options.bucket,
            key,
            part_size=self._options.part_size,
            parts_in_flight=self._options.parts_in_flight,
            content_type=CONTENT_TYPES[job.format],
            content_disposition=content_disposition(filename),
            on_multipart_started=started,
            max_bytes=self._options.max_bytes,
            logger=ctx.log,
        )
        try:
            rows = await self._copy(kind, sql, args, upload, ctx)
            # The last part goes up now, so that the commit, done while the
            # job's row is locked, is a single request.
            await upload.flush()
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
        return _Prepared(upload, key, rows)

    async def _copy(
        self, kind: Kind, sql: str, args: list[Any], upload: ObjectUpload, ctx: JobContext
    ) -> int:
        async def sink(chunk: bytes) -> None:
            await upload.write(chunk)
            ctx.progress.bytes = upload.bytes_written

        what = f"kind {kind.name!r}"
        try:
            async with (
                self._pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                await conn.execute(
                    queries()["export_session"],
                    str(int(kind.timeout_seconds * 1000)),
                    self._options.timezone,
                )
                status = await conn.copy_from_query(
                    sql, *args, output=sink, format="csv", header=True
                )
        except ExportError:
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise classify_pg_error(exc, what) from exc
        return copy_row_count(status)
