"""The S3 client and the small S3 operations around it.

One aiobotocore client serves the whole process: it owns the connection pool,
so every export and the API share the pool instead of opening their own.
Every S3 failure leaves this module as an ``ExportError`` whose kind decides
whether the job is retried, and whose message tells an operator what to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
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
from exportd.s3.presign import PROBE_KEY, Credentials, Endpoint, Presigner
from exportd.settings.model import Settings

# aiobotocore ships no type information; the alias keeps ``Any`` in one place.
S3Client: TypeAlias = Any

# Connections beyond the part uploads, for the API's presigning and readiness
# checks and for the CreateMultipartUpload/Complete calls between parts.
_SPARE_CONNECTIONS = 4
# botocore's own bounds on one attempt of a request: connecting, and waiting
# for the answer once the body is sent (not the whole transfer). The overall
# deadline of DeadlineClient bounds the attempts together; three attempts (at
# most about 3 s of botocore's backoff between them) fit well inside it, so a
# store's repeated answer, not the deadline, is what the caller sees.
_CONNECT_TIMEOUT = 5.0
_MAX_ATTEMPTS = 3
# A body is sent at no less than this rate: a part's deadline is the request
# deadline plus its size at this rate (1 MiB/s: a 5 MiB part gets 5 s more).
MIN_UPLOAD_BYTES_PER_SECOND = 1024 * 1024


class DeadlineClient:
    """The aiobotocore client, with an overall deadline on every awaited operation.

    botocore's timeouts bound one attempt's connect and read; a server that
    accepts the request and trickles, or answers nothing while keeping the
    connection alive, and botocore's own retries, are bounded only by this
    ``asyncio.timeout``: ``request_seconds`` per operation, plus, for one
    carrying a body, its size at ``MIN_UPLOAD_BYTES_PER_SECOND``. An
    operation past its deadline raises ``TimeoutError`` (which
    ``classify_s3_error`` makes ``storage_unavailable``). Synchronous
    attributes (``get_paginator``, ``meta``, ``exceptions``) pass through:
    a listing is bounded by its caller (``list_open_uploads``).
    """

    def __init__(self, client: Any, request_seconds: float) -> None:
        if request_seconds <= 0:
            raise ValueError(f"request_seconds must be positive, got {request_seconds}")
        self._client = client
        self.request_seconds = request_seconds

    def deadline(self, body: object = None) -> float:
        """Seconds allowed for one operation carrying ``body`` (None: no body)."""
        size = len(body) if isinstance(body, bytes | bytearray | memoryview) else 0
        return self.request_seconds + size / MIN_UPLOAD_BYTES_PER_SECOND

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        # aiobotocore's operations are plain functions that return a coroutine
        # (not coroutine functions), so the result decides, not the function.
        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.isawaitable(result):
                return self._bounded(result, self.deadline(kwargs.get("Body")))
            return result

        return call

    @staticmethod
    async def _bounded(operation: Awaitable[Any], seconds: float) -> Any:
        async with asyncio.timeout(seconds):
            return await operation


def request_deadline(client: S3Client, default: float = 30.0) -> float:
    """The client's per-request deadline in seconds (``default`` for a bare client)."""
    return float(getattr(client, "request_seconds", default))


async def open_s3_client(settings: Settings, stack: contextlib.AsyncExitStack) -> S3Client:
    """The process's S3 client, every operation under a deadline
    (``settings.s3_request_seconds``); it is closed when ``stack`` is."""
    request_seconds = settings.s3_request_seconds
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
        connect_timeout=min(_CONNECT_TIMEOUT, request_seconds),
        read_timeout=request_seconds,
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
    client = await stack.enter_async_context(
        session.create_client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=config,
            **credentials,
        )
    )
    return DeadlineClient(client, request_seconds)


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
    seconds = request_deadline(client)
    try:
        async with asyncio.timeout(seconds):
            chain = await get_session().get_credentials()
    except Exception as exc:
        raise classify_s3_error(exc, operation="GetObject", bucket=bucket) from exc
    if chain is None:
        raise ExportError(
            ErrorKind.ACCESS_DENIED,
            "no AWS credentials found (environment, shared files, container or instance "
            "role); set EXPORTD_S3_ACCESS_KEY_ID and EXPORTD_S3_SECRET_ACCESS_KEY",
        )

    async def current() -> Credentials:
        # A refresh may ask a metadata service or STS, which can hang too.
        try:
            async with asyncio.timeout(seconds):
                frozen = await chain.get_frozen_credentials()
        except Exception as exc:
            raise classify_s3_error(exc, operation="GetObject", bucket=bucket) from exc
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return Presigner(endpoint, current)


def download_signer(presigner: Presigner) -> Callable[[str, str, timedelta], Awaitable[str]]:
    """``sign(key, filename, lifetime)`` for ``api.views.with_download``: a URL that makes
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
        raise classify_s3_error(exc, operation="AbortMultipartUpload", bucket=bucket) from exc
    except Exception as exc:
        raise classify_s3_error(exc, operation="AbortMultipartUpload", bucket=bucket) from exc
    return True


async def list_open_uploads(client: S3Client, bucket: str, prefix: str) -> list[OpenUpload]:
    """Multipart uploads started under ``prefix`` and neither completed nor aborted.

    The whole listing, every page of it, is bounded by the client's request
    deadline: the sweep lists inside a transaction.
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
# The store's state or the daemon's configuration, whichever job asks: an
# outage, retried, and counted by the storage circuit breaker.
_UNAVAILABLE_HINTS = {
    "NoSuchBucket": "create the bucket or correct EXPORTD_S3_BUCKET",
    "RequestTimeout": "the connection to S3 was too slow",
    "RequestTimeTooSkewed": "this machine's clock is off; synchronise it",
    "NoSuchUpload": "the multipart upload was aborted or expired meanwhile, by a bucket "
    "lifecycle rule or another process",
    "PermanentRedirect": "the bucket is in another region; correct EXPORTD_S3_REGION "
    "or EXPORTD_S3_ENDPOINT_URL",
    "AuthorizationHeaderMalformed": "correct EXPORTD_S3_REGION",
    "ExpiredToken": "the session credentials expired; check the AWS credential chain",
    "InvalidToken": "the session token is invalid; check the AWS credential chain",
    "InvalidBucketName": "correct EXPORTD_S3_BUCKET",
    # The request's body was damaged on the way: another attempt sends it again.
    "BadDigest": "the body arrived damaged; check the network path to S3",
    "IncompleteBody": "the body arrived incomplete; check the network path to S3",
    "XAmzContentSHA256Mismatch": "the body arrived damaged; check the network path to S3",
}
# S3 refusing the job's own request (its key, a header made from its file
# name, its size): another attempt would send the same request, and the store
# is fine for every other job. Permanent, never counted by the breaker.
_REQUEST_HINTS = {
    "KeyTooLongError": "the object key is longer than the store allows (1024 bytes on S3)",
    "InvalidArgument": "the store refused an argument of the request, such as a key "
    "segment it cannot hold",
    "InvalidObjectName": "the store cannot hold an object of this name",
    "XMinioInvalidObjectName": "the store cannot hold an object of this name",
    "MetadataTooLarge": "the object's headers (its file name) are too large for the store",
    "InvalidURI": "the store cannot parse the object's key",
    "InvalidRequest": "the store refused the request as sent",
    "UnexpectedContent": "the store refused the request as sent",
    "InvalidStorageClass": "the storage class is not one the store knows",
    "EntityTooSmall": "a part is smaller than the store's minimum",
    "InvalidPart": "a part the store does not have was named",
    "InvalidPartOrder": "the parts were not named in order",
    "MalformedXML": "the store could not read the request's document",
}
_TOO_LARGE_CODES = frozenset({"EntityTooLarge", "413", "RequestEntityTooLarge"})
_TOO_LARGE_STATUS = 413
# A 5xx is an outage, unless the store shows that it answers other requests
# and refuses only this one (see ``key_is_refused``): rclone, for one,
# answers "500 InternalError" for a name its file system cannot hold.
_NAME_REFUSED_HINT = (
    "the store failed on this object's name while it stores others: the name is one "
    "it cannot hold (a path segment too long for its file system, say)"
)

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
    """The ``ExportError`` an S3 failure means for the job, decided by its cause.

    - The job's own request refused (4xx about the request: ``KeyTooLongError``,
      ``InvalidArgument``, 400, 414, 431, ...): ``storage_rejected``, permanent;
      ``EntityTooLarge`` and 413 are ``too_large``.
    - The store unusable for everyone (timeouts, connection loss, 5xx,
      throttling, a missing bucket, a skewed clock): ``storage_unavailable``,
      retried.
    - The daemon's credentials refused (403 and its codes): ``access_denied``,
      the operator's to fix; retried like an outage, so jobs wait for the fix.
    - Failures that did not come from S3 at all: ``internal``.

    Both outage kinds feed the storage circuit breaker
    (``errors.STORAGE_OUTAGES``); a refused request never does. Messages say
    what happened and what to check, never whether the job is retried (the
    worker decides that from the kind and the attempts left), and carry S3's
    error code and message, never credentials.
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
    if isinstance(exc, TimeoutError) and not str(exc):
        # An asyncio deadline (see DeadlineClient) says nothing of its own.
        return ExportError(
            ErrorKind.STORAGE_UNAVAILABLE,
            f"S3 did not answer {where} within its deadline "
            "(check EXPORTD_S3_ENDPOINT_URL, the network and the store's health)",
        )
    if isinstance(exc, _CONNECTION_ERRORS):
        detail = _clip(str(exc)) or type(exc).__name__
        return ExportError(
            ErrorKind.STORAGE_UNAVAILABLE,
            f"S3 unreachable for {where}: {detail} (check EXPORTD_S3_ENDPOINT_URL and the network)",
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
        status == 403 and code not in _UNAVAILABLE_HINTS  # a skewed clock: not a permission
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
    if code in _THROTTLING_CODES or status == 429:
        hint = "the server is throttling requests"
    elif code in _UNAVAILABLE_HINTS:
        hint = _UNAVAILABLE_HINTS[code]
    elif code in _TOO_LARGE_CODES or status == _TOO_LARGE_STATUS:
        return ExportError(
            ErrorKind.TOO_LARGE,
            f"S3 refused {where} as too large: {detail}; narrow the export or lower "
            "EXPORTD_S3_MAX_EXPORT_BYTES to what the store accepts",
        )
    elif code in _REQUEST_HINTS:
        return _rejected(where, detail, _REQUEST_HINTS[code])
    elif isinstance(status, int) and status >= 500:
        hint = "the server failed"
    elif isinstance(status, int) and 400 <= status < 500 and status not in (404, 408, 409):
        # Any other 4xx (400, 411, 414 URI too long, 431 headers too large...)
        # is about the request itself, whose key and headers come from the job.
        return _rejected(where, detail, "the store refused the request as sent")
    else:
        hint = "an answer exportd does not know"
    return ExportError(ErrorKind.STORAGE_UNAVAILABLE, f"S3 failed {where}: {detail} ({hint})")


def _rejected(where: str, detail: str, hint: str) -> ExportError:
    return ExportError(
        ErrorKind.STORAGE_REJECTED,
        f"S3 refused {where} for this job's request: {detail} ({hint}; the object's key "
        "comes from the owner and the file name: enqueue with a shorter or plainer one)",
    )


def name_refused(exc: BaseException, *, operation: str, bucket: str) -> ExportError:
    """The error of a failure (``exc``) on one object's name, once the store was seen
    storing another object meanwhile.

    A server failure is ``storage_rejected``: the store said no, and says it
    again to the same name. No answer at all is ``timeout``: the store is
    fine, so it must not count as an outage, but a stall cannot be told from
    a refusal, so the job is tried again until its attempts are spent.
    """
    where = _where(operation, bucket)
    if isinstance(exc, TimeoutError):
        return ExportError(
            ErrorKind.TIMEOUT,
            f"S3 did not answer {where} for this object within its deadline, while it "
            "stores others: its name may be one the store cannot hold (the key comes from "
            "the owner and the file name)",
        )
    detail = type(exc).__name__
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = _clip(str(error.get("Message") or ""))
        detail = f"{code}: {message}" if message and message != code else code
    return _rejected(where, detail, _NAME_REFUSED_HINT)


def may_be_refused_name(exc: BaseException) -> bool:
    """Is ``exc`` a failure that one object's name could have caused?

    A 500 (``InternalError``) or 501: what rclone answers for a name its file
    system cannot hold; or no answer at all within the deadline, which is
    what rclone gives aiohttp's ``Expect: 100-continue`` PutObject for a
    name it refuses. A 503, throttling or a lost connection is an outage
    whatever the name.
    """
    if isinstance(exc, TimeoutError):
        return True
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(exc.response.get("Error", {}).get("Code") or "")
    return status in (500, 501) and code not in _THROTTLING_CODES
