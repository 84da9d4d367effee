"""What an S3 failure means for the job: its ``ExportError`` kind and message.

Every S3 failure leaves the S3 package as an ``ExportError`` decided here:
its kind decides whether the job is retried and whether the storage circuit
breaker counts it, and its message tells an operator what to check. A store
that fails on one object's name while it stores others is told apart from an
outage by ``may_be_refused_name`` and ``name_refused``.
"""

from __future__ import annotations

import asyncio

import aiohttp
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


def is_no_such_upload(exc: BaseException) -> bool:
    """Is ``exc`` S3's ``NoSuchUpload``: the multipart upload is no longer open?"""
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == (
        "NoSuchUpload"
    )
