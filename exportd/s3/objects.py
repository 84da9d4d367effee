"""The small S3 operations on a bucket's objects, each under a deadline.

An abort or a delete talks to S3, which may be the thing that is down, and
its caller (a job being cancelled, a maintenance round, an API request
holding a row lock) must go on: each operation here ends within its
deadline and raises only ``ExportError`` (``causes.classify_s3_error``). The
deadline is the client's request deadline (``client.request_deadline``)
but at most ``CLEANUP_SECONDS``, or a shorter one a caller asks for:
a long lease (and so a long request deadline) must not let a cleanup keep
a maintenance round's locks or a cancelled job's slot for minutes.
``DeadlineClient`` bounds every request too, and the bound here also holds
for a bare client.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TypedDict

from exportd.s3.causes import classify_s3_error, is_no_such_upload
from exportd.s3.client import S3Client, request_deadline

# The longest an abort or a delete may take by default: one small request.
CLEANUP_SECONDS = 30.0


def _seconds(client: S3Client, seconds: float | None) -> float:
    return min(request_deadline(client), CLEANUP_SECONDS) if seconds is None else seconds


async def check_bucket(client: S3Client, bucket: str) -> None:
    """Raise an ``ExportError`` unless the bucket exists and the credentials reach it."""
    try:
        await client.head_bucket(Bucket=bucket)
    except Exception as exc:
        raise classify_s3_error(exc, operation="HeadBucket", bucket=bucket) from exc


async def delete_object(
    client: S3Client, bucket: str, key: str, *, seconds: float | None = None
) -> None:
    """Delete ``key`` from ``bucket`` within ``seconds`` (None: the client's request
    deadline, at most ``CLEANUP_SECONDS``). A key that does not exist is deleted
    already: S3 answers success.

    Raises ``ExportError``: ``storage_unavailable`` when the deadline passes
    or the store is down, ``access_denied`` without the DeleteObject permission.
    """
    try:
        async with asyncio.timeout(_seconds(client, seconds)):
            await client.delete_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise classify_s3_error(exc, operation="DeleteObject", bucket=bucket) from exc


async def abort_upload(
    client: S3Client, bucket: str, key: str, upload_id: str, *, seconds: float | None = None
) -> bool:
    """Abort a multipart upload within ``seconds`` (None: the client's request
    deadline, at most ``CLEANUP_SECONDS``).

    True when aborted, False when S3 no longer has it open (``NoSuchUpload``):
    a worker killed between S3's CompleteMultipartUpload and its row's update
    leaves a row naming an upload that S3 has already completed, and there is
    nothing left to clean up. Raises ``ExportError`` otherwise, as
    ``delete_object`` does.
    """
    try:
        async with asyncio.timeout(_seconds(client, seconds)):
            await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:
        if is_no_such_upload(exc):
            return False
        raise classify_s3_error(exc, operation="AbortMultipartUpload", bucket=bucket) from exc
    return True


async def store_and_delete_empty(
    client: S3Client, bucket: str, key: str, *, seconds: float | None = None
) -> None:
    """Write an empty object at ``key`` and delete it again, both within ``seconds``
    (None: each within the client's request deadline).

    Shows that the store stores objects at this moment (see
    ``upload.ObjectUpload``'s name probe). Raises ``ExportError`` when it does not.
    """
    try:
        async with asyncio.timeout(seconds):
            await client.put_object(Bucket=bucket, Key=key, Body=b"")
            await delete_object(client, bucket, key)
    except Exception as exc:
        raise classify_s3_error(exc, operation="PutObject", bucket=bucket) from exc


class OpenUpload(TypedDict):
    Key: str
    UploadId: str
    Initiated: datetime


async def list_open_uploads(client: S3Client, bucket: str, prefix: str) -> list[OpenUpload]:
    """Multipart uploads started under ``prefix`` and neither completed nor aborted.

    The whole listing, every page of it, is bounded by the client's request
    deadline: the sweep lists inside a transaction. Raises ``ExportError``.
    """
    uploads: list[OpenUpload] = []
    try:
        paginator = client.get_paginator("list_multipart_uploads")
        async with asyncio.timeout(request_deadline(client)):
            pages = [page async for page in paginator.paginate(Bucket=bucket, Prefix=prefix)]
        for page in pages:
            for upload in page.get("Uploads", []):
                uploads.append(
                    OpenUpload(
                        Key=upload["Key"],
                        UploadId=upload["UploadId"],
                        Initiated=upload["Initiated"],
                    )
                )
    except Exception as exc:
        # rclone answers NoSuchUpload, instead of an empty list, for a bucket
        # in which no multipart upload was ever started.
        if is_no_such_upload(exc):
            return []
        raise classify_s3_error(exc, operation="ListMultipartUploads", bucket=bucket) from exc
    return uploads
