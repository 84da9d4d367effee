"""Stored objects streamed into a zip bundle, one member each, in constant memory.

Each object is read with one GetObject and copied a block (``streams.BLOCK``) at a
time into its member: what is held is the block being read and the member's block,
whatever the object's size, and every read of the body has the client's request
deadline (a store that stalls mid-object is an outage, like a target that stalls).
The member's SHA-256 and size are computed as the bytes pass (``ZipMember``).

An object that does not exist (``NoSuchKey``, 404), or whose size or SHA-256 is not
the one its row gives, is a *problem*: with the kind's ``missing_files = "fail"``
the job fails as ``not_found``; with ``"list"`` it is listed in the manifest's
``file_problems`` and the export goes on. Any other failure is classified as the
target's are (``s3.causes``): an outage is retried, a refusal is ``access_denied``.
"""

from __future__ import annotations

import asyncio
import os.path
from typing import Any

from botocore.exceptions import ClientError
from isal import isal_zlib

from exportd.errors import ErrorKind, ExportError
from exportd.export.file_rows import FileRow, FilesPlan
from exportd.export.member_names import MemberNames
from exportd.export.progress import Tracker
from exportd.export.streams import BLOCK
from exportd.export.zip_stream import ZipBundle
from exportd.s3.causes import classify_s3_error
from exportd.s3.client import S3Client, request_deadline

# Content already compressed by its format: stored as it is, never tried.
_IMAGES = ("jpg", "jpeg", "png", "gif", "webp", "heic", "heif", "avif", "jxl")
_MEDIA = ("mp3", "mp4", "m4a", "m4v", "mov", "avi", "mkv", "webm", "ogg", "opus", "flac", "aac")
_ARCHIVES = ("zip", "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "jar", "apk")
_OFFICE = ("docx", "xlsx", "pptx", "odt", "ods", "odp", "epub")
STORED_EXTENSIONS = frozenset((*_IMAGES, *_MEDIA, *_ARCHIVES, *_OFFICE))
# Of the first bytes tried: deflated only when they shrink to this share or less.
DEFLATE_RATIO = 0.9
TRIAL_BYTES = 256 * 1024
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def should_deflate(name: str, first: bytes) -> bool:
    """Whether a member named ``name`` that starts with ``first`` is deflated: never for
    an extension of ``STORED_EXTENSIONS``; otherwise when the first ``TRIAL_BYTES``,
    deflated at level 1, come to at most ``DEFLATE_RATIO`` of their size (an empty
    member is stored)."""
    extension = os.path.splitext(name)[1].lstrip(".").lower()
    if extension in STORED_EXTENSIONS or not first:
        return False
    sample = first[:TRIAL_BYTES]
    return len(isal_zlib.compress(sample, 1)) <= DEFLATE_RATIO * len(sample)


class _Problem(Exception):
    """An object missing or changed; ``entry``: its member's, when it was written."""

    def __init__(self, problem: str, detail: str, entry: dict[str, object] | None = None) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail
        self.entry = entry


async def write_files(
    bundle: ZipBundle,
    plan: FilesPlan,
    client: S3Client,
    names: MemberNames,
    tracker: Tracker,
    problems: list[dict[str, object]],
    what: str,
) -> list[dict[str, object]]:
    """Copy each object of ``plan`` into ``bundle``; the manifest entries of the members
    written. Problems under the ``"list"`` policy are appended to ``problems``; under
    ``"fail"`` the first raises ``not_found``. Other failures raise ExportError."""
    entries: list[dict[str, object]] = []
    for row in plan.rows:
        try:
            entry = await _copy(bundle, plan, row, client, names, tracker)
        except _Problem as problem:
            where = f"{what}: object {row.key!r} in bucket {row.bucket!r}"
            if plan.policy == "fail":
                raise ExportError(
                    ErrorKind.NOT_FOUND,
                    f'{where} {problem.detail} (the kind\'s missing_files is "fail"; '
                    'with "list" it is listed in the manifest and the export completes)',
                ) from None
            problems.append(
                {
                    "dataset": plan.dataset,
                    "bucket": row.bucket,
                    "key": row.key,
                    "problem": problem.problem,
                    "detail": problem.detail,
                    "name": None if problem.entry is None else problem.entry["name"],
                }
            )
            if problem.entry is None:
                continue
            entry = problem.entry
        entries.append(entry)
        tracker.file_done()
    return entries


async def _copy(
    bundle: ZipBundle,
    plan: FilesPlan,
    row: FileRow,
    client: S3Client,
    names: MemberNames,
    tracker: Tracker,
) -> dict[str, object]:
    try:
        answer = await client.get_object(Bucket=row.bucket, Key=row.key)
    except Exception as exc:
        if _missing(exc):
            raise _Problem("missing", "does not exist") from None
        raise classify_s3_error(exc, operation="GetObject", bucket=row.bucket) from exc
    body = answer["Body"]
    try:
        length = answer.get("ContentLength")
        if row.size is not None and length is not None and length != row.size:
            raise _Problem("size", f"holds {length:,} bytes where its row says {row.size:,}")
        seconds = request_deadline(client)
        first = await _read(body, seconds, row, TRIAL_BYTES)
        name = names.claim(plan.folder, row.path)
        member = bundle.member(name, deflate=await asyncio.to_thread(should_deflate, name, first))
        chunk = first
        while chunk:
            await member.write(chunk)
            tracker.seen(0)
            chunk = await _read(body, seconds, row, BLOCK)
        stats = await member.close()
    finally:
        body.close()
    entry: dict[str, object] = {
        "name": stats.name,
        "dataset": plan.dataset,
        "format": "file",
        "rows": None,
        "bytes": stats.bytes,
        "sha256": stats.sha256,
        "source": {"bucket": row.bucket, "key": row.key},
    }
    mismatch = _mismatch(row, stats.bytes, stats.sha256)
    if mismatch is not None:
        raise _Problem(mismatch[0], mismatch[1], entry)
    return entry


def _mismatch(row: FileRow, size: int, sha256: str) -> tuple[str, str] | None:
    if row.size is not None and size != row.size:
        return "size", f"held {size:,} bytes where its row says {row.size:,}"
    if row.sha256 is not None and sha256 != row.sha256:
        return "sha256", f"has SHA-256 {sha256} where its row says {row.sha256}"
    return None


async def _read(body: Any, seconds: float, row: FileRow, most: int) -> bytes:
    """Up to ``most`` bytes of the object's body (b"" at its end), each read under the
    request deadline; a failure is classified as the store's."""
    data = bytearray()
    try:
        while len(data) < most:
            async with asyncio.timeout(seconds):
                chunk = await body.read(most - len(data))
            if not chunk:
                break
            data += chunk
    except Exception as exc:
        raise classify_s3_error(exc, operation="GetObject", bucket=row.bucket) from exc
    return bytes(data)


def _missing(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code") or "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _MISSING_CODES or (status == 404 and code != "NoSuchBucket")
