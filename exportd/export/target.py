"""The object a job writes: its name, its upload, and the daemon's export settings.

The object is named only once the job's layout is known (a split result is a zip), so
its upload is made inside the job's snapshot; nothing is sent until its first part is
full, when the multipart upload starts and is recorded on the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exportd.definitions.kinds import Kind
from exportd.export.file_rows import FilesConfig
from exportd.export.formats import Format
from exportd.export.interface import JobContext
from exportd.export.keys import object_key, write_probe_key
from exportd.limits import MAX_ROW_BYTES_DEFAULT
from exportd.queue.job import ExportResult, UploadRef
from exportd.queue.lease import locked_call_timeout
from exportd.s3.client import S3Client
from exportd.s3.presign import content_disposition
from exportd.s3.upload import ObjectUpload


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
    # Which stored objects files datasets may read (EXPORTD_FILES_*).
    files: FilesConfig = field(default_factory=FilesConfig)


@dataclass
class PreparedObject:
    """An export's object, its data written: ``commit`` makes it visible."""

    upload: ObjectUpload
    key: str
    rows: int
    filename: str

    async def commit(self) -> ExportResult:
        done = await self.upload.complete()
        return ExportResult(self.key, done.size_bytes, self.rows, done.sha256_hex, self.filename)

    async def abort(self) -> None:
        await self.upload.abort()


def open_upload(
    s3: S3Client,
    options: ExportOptions,
    kind: Kind,
    ctx: JobContext,
    values: dict[str, object],
    fmt: Format,
) -> tuple[ObjectUpload, str, str]:
    """The upload of a job's object, its key and its file name (the kind's file name
    with ``fmt``'s extension), under the kind's or the daemon's size limit."""
    filename = kind.filename(values, fmt.name)
    key = object_key(options.prefix, ctx.job.owner, ctx.job.id, filename)

    async def started(upload_id: str) -> None:
        await ctx.record_upload(UploadRef(upload_id, key))

    limit, limit_source = options.max_bytes, "EXPORTD_S3_MAX_EXPORT_BYTES"
    if kind.max_bytes is not None:
        limit, limit_source = kind.max_bytes, f"max_bytes of kind {kind.name!r}"
    upload = ObjectUpload(
        s3,
        options.bucket,
        key,
        part_size=options.part_size,
        parts_in_flight=options.parts_in_flight,
        content_type=fmt.content_type,
        content_disposition=content_disposition(filename),
        on_multipart_started=started,
        extra_args=options.object_args,
        max_bytes=limit,
        max_bytes_source=limit_source,
        probe_key=write_probe_key(options.prefix),
        commit_seconds=commit_request_seconds(options.lease_seconds),
        logger=ctx.log,
    )
    return upload, key, filename
