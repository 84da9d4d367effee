"""The sweep of orphaned multipart uploads under the prefix.

An upload stays open when its worker crashed and the reaper could not abort
it (S3 was down too), when its abort failed, or when its job was cancelled
while its worker was gone. Parts of an open upload are stored, and billed,
until someone aborts it. The sweep lists the open uploads under the prefix
and aborts those that no processing job owns, once they are old enough that
a job which has just started one, and not yet recorded it, is not mistaken
for an orphan.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from exportd.export.keys import job_id_of, listing_prefix
from exportd.queue.postgres import PgJobStore
from exportd.queue.upkeep import SweepRound
from exportd.s3.client import S3Client
from exportd.s3.objects import OpenUpload, abort_upload, list_open_uploads


def orphaned(
    uploads: Iterable[OpenUpload],
    live_jobs: Mapping[uuid.UUID, str | None],
    first_seen: Mapping[str, datetime],
    now: datetime,
    min_age: timedelta,
) -> list[OpenUpload]:
    """The uploads to abort (pure): exportd's, old enough, and not a processing job's.

    Only keys shaped as exportd writes them (a job id before the file name)
    are considered, so a bucket shared with others, or an empty prefix,
    never costs anyone else an upload. ``live_jobs`` maps each processing
    job to its recorded upload id (None while it has not recorded one yet).
    An upload is a live job's when its id is recorded on one, or when its
    key names one. An upload is old
    enough when ``min_age`` has passed both since S3 says it began and since
    this daemon first saw it (``first_seen``, by upload id): the server's
    clock may be skewed from ours, and some servers report a fixed date.
    """
    live_uploads = {u for u in live_jobs.values() if u is not None}
    out = []
    for upload in uploads:
        began = max(upload["Initiated"], first_seen.get(upload["UploadId"], now))
        if now - began < min_age:
            continue
        job_id = job_id_of(upload["Key"])
        if job_id is None or job_id in live_jobs or upload["UploadId"] in live_uploads:
            continue
        out.append(upload)
    return out


class UploadsSweep:
    name = "uploads_sweep"

    def __init__(
        self,
        queue: PgJobStore,
        s3: S3Client,
        bucket: str,
        prefix: str,
        min_age: timedelta,
        *,
        batch_size: int = 1000,
        logger: Any = None,
    ) -> None:
        self._queue = queue
        self._s3 = s3
        self._bucket = bucket
        self._prefix = listing_prefix(prefix)
        self._min_age = min_age
        self.batch_size = batch_size
        self._first_seen: dict[str, datetime] = {}
        self.log = logger or structlog.get_logger()

    async def run_once(self) -> int:
        """Abort up to a batch of orphaned uploads; returns how many were aborted."""
        async with self._queue.upkeep_round(SweepRound) as round_:
            if round_ is None:
                return 0
            uploads = await list_open_uploads(self._s3, self._bucket, self._prefix)
            if not uploads:
                return 0
            # Read after listing: a job that starts in between is younger
            # than min_age, and so safe either way.
            live = await round_.live_uploads()
            now = datetime.now(UTC)
            # Forget uploads no longer open, so the map stays as small as the list.
            self._first_seen = {
                u["UploadId"]: self._first_seen.get(u["UploadId"], now) for u in uploads
            }
            todo = orphaned(uploads, live, self._first_seen, now, self._min_age)
            todo = todo[: self.batch_size]
            aborted = 0
            for upload in todo:
                if not await self._abort(upload):
                    break
                aborted += 1
        return aborted

    async def _abort(self, upload: OpenUpload) -> bool:
        log = self.log.bind(key=upload["Key"], upload_id=upload["UploadId"])
        try:
            aborted = await abort_upload(self._s3, self._bucket, upload["Key"], upload["UploadId"])
        except Exception as exc:
            log.warning("orphan_upload_abort_failed", error=repr(exc))
            return False
        # Gone: completed or aborted since it was listed; nothing left to do.
        event = "orphan_upload_aborted" if aborted else "orphan_upload_gone"
        log.info(event, initiated=upload["Initiated"].isoformat())
        return True
