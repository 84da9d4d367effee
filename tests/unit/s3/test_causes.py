"""S3 failures classified by cause, without a server.

What each answer becomes, what a message says, which failures feed the storage circuit
breaker, and that every client operation has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from exportd.errors import STORAGE_OUTAGES, ErrorKind, is_retryable
from exportd.s3.causes import classify_s3_error
from exportd.s3.client import DeadlineClient, open_s3_client
from exportd.worker.breaker import StorageBreaker
from tests.support.fixtures_s3 import S3Endpoint, s3_settings


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


class _Hangs:
    """A client boundary whose operations accept the request and never answer."""

    def __init__(self) -> None:
        self.calls = 0

    # As aiobotocore's operations are: a plain function returning a coroutine.
    def put_object(self, **kwargs: Any) -> Coroutine[Any, Any, dict[str, Any]]:
        self.calls += 1
        return self._never()

    async def _never(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def get_paginator(self, name: str) -> str:
        return f"paginator {name}"


async def test_every_operation_of_the_client_has_a_deadline() -> None:
    hangs = _Hangs()
    client = DeadlineClient(hangs, 0.05)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeoutError) as caught:
        await client.put_object(Bucket="b", Key="k", Body=b"")
    assert loop.time() - began < 1.0
    assert hangs.calls == 1
    error = classify_s3_error(caught.value, operation="PutObject", bucket="b")
    assert error.kind is ErrorKind.STORAGE_UNAVAILABLE
    assert "did not answer PutObject on bucket 'b' within its deadline" in error.message
    # A body buys time at 1 MiB/s; synchronous attributes pass through.
    assert client.deadline(b"x" * 1024 * 1024) == pytest.approx(1.05)
    assert client.deadline() == 0.05
    assert client.get_paginator("list_multipart_uploads") == "paginator list_multipart_uploads"


async def test_the_settings_give_every_client_a_deadline_from_the_lease() -> None:
    endpoint = S3Endpoint("unused", "http://127.0.0.1:9", "exportdkey", "exportdsecret")
    async with contextlib.AsyncExitStack() as stack:
        client = await open_s3_client(s3_settings(endpoint, "bkt", lease_seconds=60), stack)
        assert client.request_seconds == 20.0
        client = await open_s3_client(s3_settings(endpoint, "bkt", lease_seconds=6), stack)
        assert client.request_seconds == 5.0, "never below 5 s"
        client = await open_s3_client(s3_settings(endpoint, "bkt", s3_request_timeout=2.5), stack)
        assert client.request_seconds == 2.5
