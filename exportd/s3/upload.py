"""Streaming upload of one object in constant memory.

The producer writes bytes as it renders them; ``ObjectUpload`` buffers one part, hands full
parts to background uploads, and makes the producer wait while ``parts_in_flight`` are running.
Peak buffer memory is about ``part_size * (parts_in_flight + 1)`` (``parts.upload_memory_bound``).

Objects smaller than one part never start a multipart upload: they are written
with one PutObject when complete() is called. That includes empty objects,
which a multipart upload cannot produce (completing one needs at least a part).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import structlog

from exportd.errors import ExportError
from exportd.s3.causes import classify_s3_error, may_be_refused_name, name_refused
from exportd.s3.client import S3Client
from exportd.s3.objects import abort_upload, store_and_delete_empty
from exportd.s3.part_buffer import PartBuffer
from exportd.s3.parts import MAX_PARTS, size_refusal
from exportd.tracing.seam import traced_part

log = structlog.get_logger(__name__)

# Remainders below this hash on the event loop; larger blocks go to a thread,
# because hashing several MiB takes long enough to delay heartbeats.
_INLINE_HASH_LIMIT = 256 * 1024
# Strong references to abort tasks, which must outlive a cancelled caller.
_abort_tasks: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class UploadResult:
    key: str
    size_bytes: int
    sha256_hex: str
    parts: int  # 0 when written with a plain PUT


class ObjectUpload:
    """One object being written to S3. Not safe for concurrent ``write`` calls.

    Use as ``async with ObjectUpload(...) as up: ...; await up.complete()``;
    leaving the block without completing aborts the upload.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        part_size: int,
        parts_in_flight: int,
        content_type: str,
        content_disposition: str,
        on_multipart_started: Callable[[str], Awaitable[None]] | None = None,
        extra_args: Mapping[str, str] | None = None,
        max_bytes: int | None = None,
        max_bytes_source: str = "EXPORTD_S3_MAX_EXPORT_BYTES",
        probe_key: str | None = None,
        commit_seconds: float | None = None,
        logger: Any = None,
    ) -> None:
        if part_size < 1:
            raise ValueError(f"part_size must be positive, got {part_size}")
        if parts_in_flight < 1:
            raise ValueError(f"parts_in_flight must be at least 1, got {parts_in_flight}")
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._object_args: dict[str, str] = {
            "ContentType": content_type,
            "ContentDisposition": content_disposition,
            **(extra_args or {}),
        }
        self._on_multipart_started = on_multipart_started
        self._max_bytes = max_bytes
        self._max_bytes_source = max_bytes_source
        # Where to write an empty object to learn whether a server failure
        # on this key is the store's or the key's (see _name_or_outage).
        self._probe_key = probe_key
        # The deadline of complete()'s last request (PutObject or
        # CompleteMultipartUpload), which a caller may make while it holds a
        # lock; the name probe after a failure gets half as long again.
        self._commit_seconds = commit_seconds
        # The job's logger, when there is one, so that its fields go with the event.
        self._log = logger or log

        self._buffer = PartBuffer(part_size)
        self._hasher = hashlib.sha256()
        self._bytes_written = 0
        self._upload_id: str | None = None
        self._next_part = 1
        self._etags: dict[int, str] = {}
        self._slots = asyncio.Semaphore(parts_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        # The first failure of a background part, raised by the next write or
        # by complete().
        self._failure: ExportError | None = None
        # Set when a write or complete() was interrupted: the buffer and hash
        # may no longer agree with what was sent, so the upload can only be
        # aborted.
        self._broken = False
        self._busy = False
        self._flushed = False  # after flush() only complete() or abort() may follow
        self._completed = False
        self._abort_task: asyncio.Task[None] | None = None

    @property
    def bytes_written(self) -> int:
        return self._bytes_written

    @property
    def upload_id(self) -> str | None:
        return self._upload_id

    async def __aenter__(self) -> ObjectUpload:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._completed:
            return
        left_open = exc is None and self._abort_task is None
        await self.abort()
        if left_open:
            raise RuntimeError(f"upload of {self._key!r} left without complete() or abort()")

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data``; waits while ``parts_in_flight`` parts are uploading."""
        self._check_usable()
        if self._flushed:
            raise RuntimeError(f"upload of {self._key!r} was flushed: no more writes")
        view = memoryview(data).cast("B")
        refused = size_refusal(
            self._bytes_written + len(view),
            self._part_size,
            self._max_bytes,
            self._max_bytes_source,
            MAX_PARTS,
        )
        if refused is not None:
            # What was written so far is a truncated export: only abort remains.
            self._broken = True
            raise refused
        self._busy = True
        try:
            while view:
                rest = self._buffer.fill(view)
                self._bytes_written += len(view) - len(rest)
                view = rest
                if self._buffer.full:
                    await self._send_buffer()
        except BaseException:
            self._broken = True
            raise
        finally:
            self._busy = False

    async def flush(self) -> None:
        """Send everything written so far and wait for it, short of completing.

        After flush(), complete() is a single request (CompleteMultipartUpload,
        or the PutObject of a small object), so a caller can hold a lock
        around complete() without holding it for the upload of whole parts.
        Calling it again, or not at all, is harmless.
        """
        self._check_usable()
        self._flushed = True
        if self._upload_id is None:
            return  # one PutObject at complete(): nothing can be sent earlier
        self._busy = True
        try:
            if self._buffer:
                await self._send_buffer()
            await self._wait_for_parts()
        except BaseException:
            self._broken = True
            raise
        finally:
            self._busy = False

    async def complete(self) -> UploadResult:
        """Finish the object and return what was written."""
        self._check_usable()
        self._busy = True
        try:
            if self._upload_id is None:
                await self._put_whole()
                parts = 0
            else:
                if self._buffer:
                    await self._send_buffer()
                await self._wait_for_parts()
                parts = await self._complete_multipart()
        except BaseException:
            self._broken = True
            raise
        finally:
            self._busy = False
        self._completed = True
        return UploadResult(
            key=self._key,
            size_bytes=self._bytes_written,
            sha256_hex=self._hasher.hexdigest(),
            parts=parts,
        )

    async def abort(self) -> None:
        """Stop the upload and discard what was sent. Idempotent; never raises.

        If the caller is cancelled meanwhile, the abort carries on in the
        background and the cancellation propagates.
        """
        if self._completed:
            return
        if self._abort_task is None:
            self._abort_task = asyncio.create_task(self._abort())
            _abort_tasks.add(self._abort_task)
            self._abort_task.add_done_callback(_abort_tasks.discard)
        await asyncio.shield(self._abort_task)

    # --- internals ----------------------------------------------------------

    def _check_usable(self) -> None:
        if self._busy:
            raise RuntimeError("ObjectUpload does not support concurrent calls")
        if self._completed or self._abort_task is not None:
            raise RuntimeError(f"upload of {self._key!r} is already finished")
        if self._broken:
            raise RuntimeError(f"upload of {self._key!r} was interrupted; abort it")
        self._raise_part_failure()

    def _raise_part_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _name_or_outage(self, exc: Exception, operation: str) -> ExportError:
        """The error of a request naming this key: a refused name, or an outage.

        A 500, or no answer, on a request that names the key is an outage,
        unless the store stores another object at the same moment (an empty
        one at ``probe_key``, deleted again): then it failed on this name
        alone (rclone answers "500 InternalError" for a path its file system
        cannot hold, and nothing at all to some PutObjects of such names).
        botocore has already retried a 500 before this is asked. Without a
        probe key, or if the probe fails too, it stays an outage.
        """
        error = classify_s3_error(exc, operation=operation, bucket=self._bucket)
        if self._probe_key is None or self._probe_key == self._key or not may_be_refused_name(exc):
            return error
        probe_seconds = None if self._commit_seconds is None else self._commit_seconds / 2
        try:
            await store_and_delete_empty(
                self._client, self._bucket, self._probe_key, seconds=probe_seconds
            )
        except ExportError as probe_exc:
            self._log.warning("s3_name_probe_failed", error=repr(probe_exc))
            return error
        refused = name_refused(exc, operation=operation, bucket=self._bucket)
        self._log.warning("s3_name_refused", key=self._key, error=error.message)
        return refused

    async def _send_buffer(self) -> None:
        """Hand the buffered bytes to a background part upload and hash them."""
        if self._upload_id is None:
            await self._start_multipart()
        await self._slots.acquire()
        if self._failure is not None or self._abort_task is not None:
            self._slots.release()
            self._raise_part_failure()
            raise RuntimeError(f"upload of {self._key!r} was aborted")
        part = self._buffer.take()
        number = self._next_part
        self._next_part += 1
        task = asyncio.create_task(traced_part(number, len(part), self._upload_part(number, part)))
        self._tasks.add(task)
        # A done callback, unlike a finally clause, also runs for a task
        # cancelled before it started.
        task.add_done_callback(self._part_done)
        # Hash while the part uploads (nothing writes to it again); parts are
        # hashed one at a time in order because write() awaits this.
        await self._hash(part)

    def _part_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _hash(self, data: bytearray) -> None:
        if len(data) < _INLINE_HASH_LIMIT:
            self._hasher.update(data)
        else:
            await asyncio.to_thread(self._hasher.update, data)

    async def _start_multipart(self) -> None:
        try:
            response = await self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, **self._object_args
            )
        except Exception as exc:
            raise await self._name_or_outage(exc, "CreateMultipartUpload") from exc
        # Recorded before the callback, so an abort during the callback still
        # knows what to abort.
        self._upload_id = str(response["UploadId"])
        if self._on_multipart_started is not None:
            await self._on_multipart_started(self._upload_id)

    async def _upload_part(self, number: int, body: bytearray) -> None:
        # Failures are recorded rather than raised: the producer learns of them
        # at its next write() or in complete().
        try:
            response = await self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
            self._etags[number] = str(response["ETag"])
        except Exception as exc:
            # A part names the key like the commit does: a store that stalls
            # or fails on this object's parts alone is this object's failure,
            # never an outage that would stop every other tenant's claims.
            error = await self._name_or_outage(exc, "UploadPart")
            if self._failure is None:
                self._failure = error

    async def _wait_for_parts(self) -> None:
        pending: set[asyncio.Task[None]] = set(self._tasks)
        while pending:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            self._raise_part_failure()

    async def _complete_multipart(self) -> int:
        parts = [{"PartNumber": n, "ETag": etag} for n, etag in sorted(self._etags.items())]
        try:
            async with asyncio.timeout(self._commit_seconds):
                await self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except Exception as exc:
            raise await self._name_or_outage(exc, "CompleteMultipartUpload") from exc
        return len(parts)

    async def _put_whole(self) -> None:
        body = self._buffer.take(refill=False)
        await self._hash(body)
        try:
            async with asyncio.timeout(self._commit_seconds):
                await self._client.put_object(
                    Bucket=self._bucket, Key=self._key, Body=body, **self._object_args
                )
        except Exception as exc:
            raise await self._name_or_outage(exc, "PutObject") from exc

    async def _abort(self) -> None:
        self._buffer = PartBuffer(self._part_size)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Parts still arriving after AbortMultipartUpload could leave storage
        # behind, so they are stopped first.
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._upload_id is None:
            return
        # A failed abort leaves the upload to list_open_uploads (the sweep)
        # and the bucket's lifecycle rule; a job being cancelled goes on.
        try:
            if await abort_upload(self._client, self._bucket, self._key, self._upload_id):
                return
            error = "S3 no longer has the upload open (aborted or expired meanwhile)"
        except ExportError as exc:
            error = str(exc)
        self._log.warning(
            "s3_abort_failed",
            bucket=self._bucket,
            key=self._key,
            upload_id=self._upload_id,
            error=error,
        )
