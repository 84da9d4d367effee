"""How S3 failures are classified into export errors, without a server."""

from __future__ import annotations

import aiohttp
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from exportd.errors import ErrorKind, ExportError
from exportd.s3.causes import classify_s3_error


def client_error(code: str, status: int, operation: str = "PutObject") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


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
