"""S3 failures classified by cause, without a server.

What each answer becomes, what a message says, and which failures feed the storage
circuit breaker.
"""

from __future__ import annotations

import aiohttp
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from exportd.errors import STORAGE_OUTAGES, ErrorKind, ExportError, is_retryable
from exportd.s3.causes import classify_s3_error
from exportd.worker.breaker import StorageBreaker


def client_error(code: str, status: int, operation: str = "PutObject") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


# (code, status) -> the kind. Request refusals: the job's; the rest: the store's.
CAUSES = [
    # The job's own request.
    ("KeyTooLongError", 400, ErrorKind.STORAGE_REJECTED),
    ("InvalidArgument", 400, ErrorKind.STORAGE_REJECTED),
    ("MetadataTooLarge", 400, ErrorKind.STORAGE_REJECTED),
    ("InvalidObjectName", 400, ErrorKind.STORAGE_REJECTED),
    ("InvalidStorageClass", 400, ErrorKind.STORAGE_REJECTED),
    ("EntityTooSmall", 400, ErrorKind.STORAGE_REJECTED),
    ("BadRequest", 400, ErrorKind.STORAGE_REJECTED),
    ("400", 400, ErrorKind.STORAGE_REJECTED),
    ("431", 431, ErrorKind.STORAGE_REJECTED),
    ("414", 414, ErrorKind.STORAGE_REJECTED),
    ("411", 411, ErrorKind.STORAGE_REJECTED),
    ("EntityTooLarge", 400, ErrorKind.TOO_LARGE),
    ("413", 413, ErrorKind.TOO_LARGE),
    # The store: outages.
    ("InternalError", 500, ErrorKind.STORAGE_UNAVAILABLE),
    ("NotImplemented", 501, ErrorKind.STORAGE_UNAVAILABLE),
    ("BadGateway", 502, ErrorKind.STORAGE_UNAVAILABLE),
    ("ServiceUnavailable", 503, ErrorKind.STORAGE_UNAVAILABLE),
    ("SlowDown", 503, ErrorKind.STORAGE_UNAVAILABLE),
    ("GatewayTimeout", 504, ErrorKind.STORAGE_UNAVAILABLE),
    ("TooManyRequests", 429, ErrorKind.STORAGE_UNAVAILABLE),
    ("429", 429, ErrorKind.STORAGE_UNAVAILABLE),
    ("RequestTimeout", 400, ErrorKind.STORAGE_UNAVAILABLE),
    ("408", 408, ErrorKind.STORAGE_UNAVAILABLE),
    ("BadDigest", 400, ErrorKind.STORAGE_UNAVAILABLE),
    ("IncompleteBody", 400, ErrorKind.STORAGE_UNAVAILABLE),
    ("NoSuchUpload", 404, ErrorKind.STORAGE_UNAVAILABLE),
    # The daemon's configuration: the operator's, for every tenant.
    ("NoSuchBucket", 404, ErrorKind.STORAGE_UNAVAILABLE),
    ("InvalidBucketName", 400, ErrorKind.STORAGE_UNAVAILABLE),
    ("ExpiredToken", 400, ErrorKind.STORAGE_UNAVAILABLE),
    ("AuthorizationHeaderMalformed", 400, ErrorKind.STORAGE_UNAVAILABLE),
    ("PermanentRedirect", 301, ErrorKind.STORAGE_UNAVAILABLE),
    # The daemon's clock: every request is refused until it is set right.
    ("RequestTimeTooSkewed", 403, ErrorKind.STORAGE_UNAVAILABLE),
    ("AccessDenied", 403, ErrorKind.ACCESS_DENIED),
    ("InvalidAccessKeyId", 403, ErrorKind.ACCESS_DENIED),
    ("SignatureDoesNotMatch", 403, ErrorKind.ACCESS_DENIED),
    ("403", 403, ErrorKind.ACCESS_DENIED),
]


@pytest.mark.parametrize(("code", "status", "kind"), CAUSES, ids=[c[0] for c in CAUSES])
def test_each_answer_is_classified_by_its_cause(code: str, status: int, kind: ErrorKind) -> None:
    error = classify_s3_error(client_error(code, status), bucket="exports")
    assert error.kind is kind
    assert code in error.message
    # Only outages retry and count towards the breaker.
    outage = kind is ErrorKind.STORAGE_UNAVAILABLE
    assert is_retryable(kind) is outage
    assert (kind in STORAGE_OUTAGES) is outage


def test_a_refused_request_says_what_the_job_can_change() -> None:
    error = classify_s3_error(client_error("KeyTooLongError", 400), bucket="x")
    assert error.message.startswith("S3 refused PutObject on bucket 'x' for this job's request")
    assert "owner" in error.message
    assert "file name" in error.message


@pytest.mark.parametrize(
    "exc",
    [
        *(client_error(code, status) for code, status, _ in CAUSES),
        EndpointConnectionError(endpoint_url="http://s3.invalid"),
        ConnectTimeoutError(endpoint_url="http://s3.invalid"),
        aiohttp.ClientConnectionError("reset"),
        TimeoutError(),
    ],
)
def test_no_classified_message_says_whether_it_will_be_retried(exc: BaseException) -> None:
    # Whether a job runs again is the worker's decision from the kind and the
    # attempts left; a message that promised it would be false on the last one.
    assert "retry" not in classify_s3_error(exc, bucket="b").message.lower()


def test_refused_requests_never_open_the_breaker_outages_do() -> None:
    breaker = StorageBreaker(1)
    refused = (
        ErrorKind.STORAGE_REJECTED,
        ErrorKind.TOO_LARGE,
        ErrorKind.ACCESS_DENIED,
        ErrorKind.INVALID_PARAMS,
    )
    for kind in refused:
        assert not breaker.record(kind, "one tenant's input")
    assert breaker.allows_claims
    assert breaker.readiness() == "ok"
    assert breaker.record(ErrorKind.STORAGE_UNAVAILABLE, "SlowDown")
    assert not breaker.allows_claims


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("AccessDenied", 403), ErrorKind.ACCESS_DENIED),
        (client_error("InvalidAccessKeyId", 403), ErrorKind.ACCESS_DENIED),
        (client_error("SignatureDoesNotMatch", 403), ErrorKind.ACCESS_DENIED),
        (client_error("AllAccessDisabled", 403), ErrorKind.ACCESS_DENIED),
        (client_error("NoSuchBucket", 404), ErrorKind.STORAGE_UNAVAILABLE),
        (client_error("SlowDown", 503), ErrorKind.STORAGE_UNAVAILABLE),
        (client_error("InternalError", 500), ErrorKind.STORAGE_UNAVAILABLE),
        (client_error("RequestTimeout", 400), ErrorKind.STORAGE_UNAVAILABLE),
        (client_error("SomethingNew", 400), ErrorKind.STORAGE_REJECTED),
        (client_error("SomethingNew", 599), ErrorKind.STORAGE_UNAVAILABLE),
        (EndpointConnectionError(endpoint_url="http://s3.invalid"), ErrorKind.STORAGE_UNAVAILABLE),
        (ReadTimeoutError(endpoint_url="http://s3.invalid"), ErrorKind.STORAGE_UNAVAILABLE),
        (aiohttp.ClientConnectionError("reset"), ErrorKind.STORAGE_UNAVAILABLE),
        (ConnectionResetError(104, "reset by peer"), ErrorKind.STORAGE_UNAVAILABLE),
        (TimeoutError(), ErrorKind.STORAGE_UNAVAILABLE),
        (ValueError("a bug"), ErrorKind.INTERNAL),
    ],
)
def test_classification(exc: BaseException, kind: ErrorKind) -> None:
    error = classify_s3_error(exc, bucket="exports")
    assert error.kind is kind
    assert "'exports'" in error.message


def test_classification_messages_are_actionable() -> None:
    denied = classify_s3_error(client_error("AccessDenied", 403), bucket="x")
    assert denied.message.startswith("S3 refused PutObject on bucket 'x': AccessDenied")
    assert "s3:PutObject" in denied.message

    slow = classify_s3_error(client_error("SlowDown", 503, "UploadPart"), bucket="x")
    assert "UploadPart" in slow.message
    assert "throttling" in slow.message

    odd = classify_s3_error(client_error("SomethingNew", 400), bucket="x")
    assert odd.message.startswith("S3 refused PutObject on bucket 'x' for this job's request")
    assert "SomethingNew" in odd.message


def test_classification_keeps_export_errors() -> None:
    error = ExportError(ErrorKind.TOO_LARGE, "big")
    assert classify_s3_error(error) is error
