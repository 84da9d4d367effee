"""The S3 client and the small S3 operations around it.

One aiobotocore client serves the whole process: it owns the connection pool,
so every export and the API share the pool instead of opening their own.
Every S3 failure leaves this module as an ``ExportError`` whose kind decides
whether the job is retried, and whose message tells an operator what to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, TypedDict
from urllib.parse import quote

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from exportd.errors import ErrorKind, ExportError
from exportd.presign import PROBE_KEY, Credentials, Endpoint, Presigner
from exportd.settings import Settings

# aiobotocore ships no type information; the alias keeps ``Any`` in one place.
S3Client: TypeAlias = Any

# Connections beyond the part uploads, for the API's presigning and readiness
# checks and for the CreateMultipartUpload/Complete calls between parts.
_SPARE_CONNECTIONS = 4
_CONNECT_TIMEOUT = 5.0
# A part of up to 5 GiB is sent as one request; the read timeout bounds the
# wait for the server's answer after the body is sent, not the whole transfer.
_READ_TIMEOUT = 60.0
_MAX_ATTEMPTS = 4


async def open_s3_client(settings: Settings, stack: contextlib.AsyncExitStack) -> S3Client:
    """The process's S3 client; it is closed when ``stack`` is."""
    config = AioConfig(
        region_name=settings.s3_region,
        # SigV4 everywhere: S3-compatible servers (rclone, MinIO, R2) reject the
        # SigV2 presigned URLs botocore would otherwise produce.
        signature_version="s3v4",
        s3={"addressing_style": "path" if settings.path_style else "virtual"},
        request_checksum_calculation=settings.s3_checksum,
        response_checksum_validation=settings.s3_checksum,
        max_pool_connections=settings.concurrency * settings.s3_parts_in_flight
        + _SPARE_CONNECTIONS,
        connect_timeout=_CONNECT_TIMEOUT,
        read_timeout=_READ_TIMEOUT,
        retries={"mode": "standard", "max_attempts": _MAX_ATTEMPTS},
    )
    credentials: dict[str, str] = {}
    if settings.s3_access_key_id is not None and settings.s3_secret_access_key is not None:
        credentials = {
            "aws_access_key_id": settings.s3_access_key_id.get_secret_value(),
            "aws_secret_access_key": settings.s3_secret_access_key.get_secret_value(),
        }
    # Without explicit keys botocore walks the standard chain (environment,
    # shared files, container and instance roles) and refreshes them itself.
    session = get_session()
    return await stack.enter_async_context(
        session.create_client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=config,
            **credentials,
        )
    )


# Characters RFC 5987 allows unencoded in an ext-value ("attr-char"); quote()
# already keeps letters, digits and "_.-~".
_ATTR_CHAR_EXTRA = "!#$&+^`|"


def _ascii_fallback(filename: str) -> str:
    # Decompose so accented letters keep their base letter ("Übersicht" becomes
    # "Ubersicht"), then replace whatever is still outside printable ASCII, and
    # the two characters a quoted-string cannot hold as they are.
    decomposed = unicodedata.normalize("NFKD", filename)
    out = []
    for char in decomposed:
        if unicodedata.combining(char):
            continue
        if not (" " <= char <= "~") or char in '"\\':
            out.append("_")
        else:
            out.append(char)
    return "".join(out) or "download"


def content_disposition(filename: str) -> str:
    """A ``Content-Disposition: attachment`` value that names the file.

    ``filename*`` appears only when the plain ``filename`` cannot say the same
    thing: every current browser reads ``filename*`` when present, but it is
    the rarely exercised branch of older clients and download tools, so plain
    ASCII names are sent in the one form everything understands.
    """
    fallback = _ascii_fallback(filename)
    value = f'attachment; filename="{fallback}"'
    if filename and fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe=_ATTR_CHAR_EXTRA)}"
    return value


async def open_presigner(settings: Settings, client: S3Client) -> Presigner:
    """A ``Presigner`` for the settings' bucket, fixed by one botocore presign now."""
    bucket = settings.bucket()
    try:
        probe = await client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": PROBE_KEY}, ExpiresIn=60
        )
    except Exception as exc:
        raise classify_s3_error(exc, operation="GetObject", bucket=bucket) from exc
    endpoint = Endpoint.from_probe(str(probe))
    if settings.s3_access_key_id is not None and settings.s3_secret_access_key is not None:
        fixed = Credentials(
            settings.s3_access_key_id.get_secret_value(),
            settings.s3_secret_access_key.get_secret_value(),
        )

        async def explicit() -> Credentials:
            return fixed

        return Presigner(endpoint, explicit)
    # The standard chain, as the client uses it: role credentials rotate, so
    # each URL asks for the current ones (cached by botocore until they expire).
    chain = await get_session().get_credentials()
    if chain is None:
        raise ExportError(
            ErrorKind.ACCESS_DENIED,
            "no AWS credentials found (environment, shared files, container or instance "
            "role); set EXPORTD_S3_ACCESS_KEY_ID and EXPORTD_S3_SECRET_ACCESS_KEY",
        )

    async def current() -> Credentials:
        frozen = await chain.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return Presigner(endpoint, current)


def download_signer(presigner: Presigner) -> Callable[[str, str, timedelta], Awaitable[str]]:
    """``sign(key, filename, lifetime)`` for ``jobview.with_download``: a URL that makes
    browsers save the object as ``filename``."""

    async def sign(key: str, filename: str, lifetime: timedelta) -> str:
        return await presigner.presign(
            key,
            expires_seconds=int(lifetime.total_seconds()),
            now=datetime.now(UTC),
            query={"response-content-disposition": content_disposition(filename)},
        )

    return sign


async def check_bucket(client: S3Client, bucket: str) -> None:
    """Raise an ``ExportError`` unless the bucket exists and the credentials reach it."""
    try:
        await client.head_bucket(Bucket=bucket)
    except Exception as exc:
        raise classify_s3_error(exc, operation="HeadBucket", bucket=bucket) from exc


async def delete_object(client: S3Client, bucket: str, key: str) -> None:
    try:
        await client.delete_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise classify_s3_error(exc, operation="DeleteObject", bucket=bucket) from exc


class OpenUpload(TypedDict):
    Key: str
    UploadId: str
    Initiated: datetime


def _is_no_such_upload(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == (
        "NoSuchUpload"
    )


async def abort_upload(client: S3Client, bucket: str, key: str, upload_id: str) -> bool:
    """Abort a multipart upload: True when aborted, False when S3 no longer has
    it open. A worker killed between S3's CompleteMultipartUpload and its row's
    update leaves a row naming an upload that S3 has already completed; its
    abort then answers NoSuchUpload, and there is nothing left to clean up.
    Other errors are raised."""
    try:
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except ClientError as exc:
        if _is_no_such_upload(exc):
            return False
        raise
    return True


async def list_open_uploads(client: S3Client, bucket: str, prefix: str) -> list[OpenUpload]:
    """Multipart uploads started under ``prefix`` and neither completed nor aborted."""
    uploads: list[OpenUpload] = []
    try:
        paginator = client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                uploads.append(
                    OpenUpload(
                        Key=upload["Key"],
                        UploadId=upload["UploadId"],
                        Initiated=upload["Initiated"],
                    )
                )
    except ClientError as exc:
        # rclone answers NoSuchUpload, instead of an empty list, for a bucket
        # in which no multipart upload was ever started.
        if _is_no_such_upload(exc):
            return []
        raise classify_s3_error(exc, operation="ListMultipartUploads", bucket=bucket) from exc
    except Exception as exc:
        raise classify_s3_error(exc, operation="ListMultipartUploads", bucket=bucket) from exc
    return uploads


# --- Error classification ---------------------------------------------------

# The IAM action each operation needs, for "check the permission" hints.
_IAM_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
    "HeadBucket": "s3:ListBucket",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}

_DENIED_HINTS = {
    "InvalidAccessKeyId": "the server does not know the access key; check "
    "EXPORTD_S3_ACCESS_KEY_ID or the credentials the AWS chain found",
    "SignatureDoesNotMatch": "check EXPORTD_S3_SECRET_ACCESS_KEY and EXPORTD_S3_REGION",
}
# What a refused HEAD request, which has no error body, cannot tell apart.
_BARE_403_HINT = (
    "check the credentials (EXPORTD_S3_ACCESS_KEY_ID, EXPORTD_S3_SECRET_ACCESS_KEY) "
    "and their {action} permission"
)

_THROTTLING_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
_UNAVAILABLE_HINTS = {
    "NoSuchBucket": "create the bucket or correct EXPORTD_S3_BUCKET",
    "RequestTimeout": "the connection to S3 was too slow; will retry",
    "RequestTimeTooSkewed": "this machine's clock is off; synchronise it",
    "NoSuchUpload": "the multipart upload was aborted or expired meanwhile, by a bucket "
    "lifecycle rule or another process; will retry",
}

_CONNECTION_ERRORS = (
    EndpointConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    ConnectTimeoutError,
    aiohttp.ClientError,
    OSError,  # includes TimeoutError, which asyncio.TimeoutError is since 3.11
    asyncio.TimeoutError,
)

# S3 messages are short; a bound keeps a misbehaving proxy's HTML page out of
# job rows and logs.
_MAX_DETAIL = 300


def _where(operation: str | None, bucket: str | None) -> str:
    text = operation or "a request"
    if bucket:
        text += f" on bucket {bucket!r}"
    return text


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def classify_s3_error(
    exc: BaseException, *, operation: str | None = None, bucket: str | None = None
) -> ExportError:
    """The ``ExportError`` an S3 failure means for the job.

    Refusals (bad or insufficient credentials) are permanent: retrying cannot
    fix them. Everything else from S3 is treated as an outage and retried, since
    a missing bucket or an odd error is usually fixed by an operator, after which
    the job should succeed. Failures that did not come from S3 at all are
    internal errors. Messages carry S3's error code and message, never
    credentials (S3 does not echo secrets, and presigned URLs are not included).
    """
    if isinstance(exc, ExportError):
        return exc
    if isinstance(exc, ClientError):
        return _classify_client_error(exc, operation, bucket)
    where = _where(operation, bucket)
    if isinstance(exc, NoCredentialsError):
        # Retryable: with instance or container roles the chain can come up
        # empty while the metadata service is briefly unreachable.
        return ExportError(
            ErrorKind.STORAGE_UNAVAILABLE,
            f"no S3 credentials for {where}: set EXPORTD_S3_ACCESS_KEY_ID and "
            "EXPORTD_S3_SECRET_ACCESS_KEY, or provide credentials to the AWS chain",
        )
    if isinstance(exc, _CONNECTION_ERRORS):
        detail = _clip(str(exc)) or type(exc).__name__
        return ExportError(
            ErrorKind.STORAGE_UNAVAILABLE,
            f"S3 unreachable for {where}: {detail} "
            "(check EXPORTD_S3_ENDPOINT_URL and the network; will retry)",
        )
    if isinstance(exc, ParamValidationError):
        return ExportError(ErrorKind.INTERNAL, f"invalid S3 request for {where}: {_clip(str(exc))}")
    if isinstance(exc, BotoCoreError):
        return ExportError(
            ErrorKind.STORAGE_UNAVAILABLE,
            f"unexpected S3 client error for {where}: {type(exc).__name__}: {_clip(str(exc))}",
        )
    return ExportError(
        ErrorKind.INTERNAL,
        f"unexpected error during {where}: {type(exc).__name__}: {_clip(str(exc))}",
    )


def _classify_client_error(
    exc: ClientError, operation: str | None, bucket: str | None
) -> ExportError:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # HEAD responses carry no body, so botocore reports the status as the code.
    code = str(error.get("Code") or status or "Unknown")
    message = _clip(str(error.get("Message") or ""))
    operation = operation or getattr(exc, "operation_name", None)
    where = _where(operation, bucket or error.get("BucketName"))
    detail = f"{code}: {message}" if message and message != code else code

    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or (
        status == 403
    ):
        action = _IAM_ACTIONS.get(operation or "", "the needed")
        if code in _DENIED_HINTS:
            hint = _DENIED_HINTS[code]
        elif code == "403":
            hint = _BARE_403_HINT.format(action=action)
        else:
            hint = f"check the credentials' {action} permission"
        return ExportError(ErrorKind.ACCESS_DENIED, f"S3 refused {where}: {detail} ({hint})")

    if code == "404" and operation == "HeadBucket":
        code = detail = "NoSuchBucket"
    if code in _THROTTLING_CODES:
        hint = "the server is throttling requests; will retry"
    elif code in _UNAVAILABLE_HINTS:
        hint = _UNAVAILABLE_HINTS[code]
    elif isinstance(status, int) and status >= 500:
        hint = "the server failed; will retry"
    else:
        return ExportError(
            ErrorKind.STORAGE_UNAVAILABLE,
            f"S3 returned an unexpected error for {where}: {detail} (will retry)",
        )
    return ExportError(ErrorKind.STORAGE_UNAVAILABLE, f"S3 failed {where}: {detail} ({hint})")
