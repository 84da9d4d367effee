"""S3 failures classified by cause: a job's refused request is that job's
permanent failure and never stops the other tenants; only outages retry and
feed the storage circuit breaker. Against rclone and moto, and in a daemon."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine
from typing import Any

import aiohttp
import asyncpg
import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from exportd.errors import STORAGE_OUTAGES, ErrorKind, ExportError, is_retryable
from exportd.export import engine as exporter_module
from exportd.export.engine import write_probe_key
from exportd.export.keys import object_key
from exportd.s3.client import (
    DeadlineClient,
    S3Client,
    classify_s3_error,
    content_disposition,
    open_s3_client,
)
from exportd.s3.upload import ObjectUpload
from exportd.worker.breaker import StorageBreaker
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.daemon_process import status
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, s3_settings
from tests.support.helpers import eventually, insert_job, job_row
from tests.support.s3_proxy import failing_proxy


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


# --- real stores refusing a request for its input -----------------------------------

PART = 5 * 1024 * 1024


def _upload(client: S3Client, bucket: str, key: str, **overrides: Any) -> ObjectUpload:
    options: dict[str, Any] = {
        "part_size": PART,
        "parts_in_flight": 2,
        "content_type": "text/csv",
        "content_disposition": content_disposition("export.csv"),
        "probe_key": write_probe_key("exports"),
    }
    options.update(overrides)
    return ObjectUpload(client, bucket, key, **options)


async def _write_all(up: ObjectUpload, data: bytes) -> None:
    await up.write(data)
    await up.complete()


# What each store refuses for the request's own sake:
# (name, key, size, upload options, what the message names, kind).
_JOB = str(uuid.UUID(int=7))
_REJECTED, _STALLED = ErrorKind.STORAGE_REJECTED, ErrorKind.TIMEOUT
# rclone gives aiohttp's "Expect: 100-continue" PutObject no answer at all
# for a name it refuses: the store still stores others, so it is the name's
# stall (timeout: retried, never an outage), not the store's.
_NO_ANSWER = "did not answer"
REFUSALS: dict[str, list[tuple[str, str, int, dict[str, Any], str, ErrorKind]]] = {
    "rclone": [
        ("dot-dot segment", f"exports/../{_JOB}/f.csv", 10, {}, _NO_ANSWER, _STALLED),
        (
            "dot segment, multipart",
            f"exports/./{_JOB}/f",
            PART + 1,
            {},
            "InvalidArgument",
            _REJECTED,
        ),
        ("dot-dot, multipart", f"exports/../{_JOB}/f", PART + 1, {}, "InvalidArgument", _REJECTED),
        (
            "key over 1024 bytes",
            "exports/" + "/".join(["k" * 200] * 6),
            10,
            {},
            "KeyTooLongError",
            _REJECTED,
        ),
        # rclone answers 500 InternalError for a name its file system cannot
        # hold: the probe beside it shows the store itself is fine.
        ("segment over 255 bytes", f"exports/{'m' * 300}/f", PART + 1, {}, "Internal", _REJECTED),
        (
            "256 emoji owner",
            "exports/" + "%F0%9F%98%80" * 86 + f"/{_JOB}/f.csv",
            PART + 1,
            {},
            "InternalError",
            _REJECTED,
        ),
        (
            "header over the server's limit",
            f"exports/o/{_JOB}/f.csv",
            PART + 1,
            {"content_disposition": "attachment; filename=" + "x" * 20000},
            "431",
            _REJECTED,
        ),
    ],
    "moto": [
        (
            "parts below the minimum",
            f"exports/o/{_JOB}/f.csv",
            3000,
            {"part_size": 1024},
            "EntityTooSmall",
            _REJECTED,
        ),
        (
            "a storage class it does not know",
            f"exports/o/{_JOB}/f.csv",
            10,
            {"extra_args": {"StorageClass": "NO_SUCH_CLASS"}},
            "InvalidStorageClass",
            _REJECTED,
        ),
    ],
}


async def test_a_store_refusing_a_request_fails_it_by_cause(
    s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        # A short deadline, so that the stalls end quickly, yet longer than
        # botocore's retries of a 500.
        settings = s3_settings(s3_endpoint, s3_bucket, s3_request_timeout=8)
        client = await open_s3_client(settings, stack)
        for name, key, size, options, named, kind in REFUSALS[s3_endpoint.name]:
            up = _upload(client, s3_bucket, key, **options)
            with pytest.raises(ExportError) as caught:
                await _write_all(up, b"x" * size)
            await up.abort()
            error = caught.value
            assert error.kind is kind, (name, error)
            assert kind not in STORAGE_OUTAGES
            assert named in error.message, (name, error)
            assert "retry" not in error.message.lower(), name
        # The probes left nothing behind, and a plain object still goes in.
        listed = await client.list_objects_v2(Bucket=s3_bucket)
        assert listed.get("KeyCount", 0) == 0
        up = _upload(client, s3_bucket, f"exports/o/{_JOB}/ok.csv")
        await up.write(b"fine\n")
        assert (await up.complete()).size_bytes == 5


async def test_a_server_failure_with_the_store_failing_too_stays_an_outage(
    rclone_server: S3Endpoint,
) -> None:
    # The same 500 on a long segment, in a bucket that is gone: the probe fails
    # too, so nothing shows the name was the cause.
    bucket = create_bucket(rclone_server)
    async with contextlib.AsyncExitStack() as stack:
        client = await open_s3_client(s3_settings(rclone_server, bucket), stack)
        up = _upload(client, bucket, f"exports/{'s' * 300}/f.csv", probe_key="exports/probe")
        await client.delete_bucket(Bucket=bucket)
        with pytest.raises(ExportError) as caught:
            await _write_all(up, b"x")
        await up.abort()
    assert caught.value.kind is ErrorKind.STORAGE_UNAVAILABLE


async def test_a_part_that_stalls_for_one_key_only_is_not_an_outage(
    s3_endpoint: S3Endpoint, s3_bucket: str
) -> None:
    # A store that takes the parts of every object but one's: the stall is that
    # object's (retried as a timeout), never an outage feeding the breaker;
    # stalling every part, the probe (a PutObject beside it) still answers, so
    # only a store failing the probe too is an outage.
    async with failing_proxy(s3_endpoint.url) as proxy:
        proxy.hold = lambda r: "partNumber" in r.query and "/victim/" in r.path
        endpoint = S3Endpoint("held", proxy.url, s3_endpoint.access_key, s3_endpoint.secret_key)
        async with contextlib.AsyncExitStack() as stack:
            settings = s3_settings(endpoint, s3_bucket, s3_request_timeout=2)
            client = await open_s3_client(settings, stack)
            up = _upload(client, s3_bucket, f"exports/victim/{_JOB}/f.csv")
            with pytest.raises(ExportError) as caught:
                await _write_all(up, b"x" * (PART + 1))
            await up.abort()
            assert caught.value.kind is ErrorKind.TIMEOUT, caught.value
            assert "UploadPart" in caught.value.message
            assert proxy.held >= 1
            other = _upload(client, s3_bucket, f"exports/other/{_JOB}/f.csv")
            await _write_all(other, b"y" * (PART + 1))
            # The whole store stalling: the probe stalls too, an outage.
            proxy.hold = lambda r: r.method == "PUT"
            up = _upload(client, s3_bucket, f"exports/victim/{_JOB}/g.csv")
            with pytest.raises(ExportError) as caught:
                await _write_all(up, b"x" * (PART + 1))
            await up.abort()
            assert caught.value.kind is ErrorKind.STORAGE_UNAVAILABLE, caught.value


# --- in a daemon: one tenant's refused request, the others unharmed -------------------

KINDS = """
[kinds.small]
query = "SELECT n FROM generate_series(1, 3) AS n WHERE :owner <> ''"
"""


def _refusing_hook(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the owner 'refused' send what ``store`` refuses for its input."""
    if store == "rclone":

        def key(prefix: str, owner: str, job_id: uuid.UUID, filename: str) -> str:
            if owner == "refused":
                return f"{prefix}/../{job_id}/{filename}"
            return object_key(prefix, owner, job_id, filename)

        monkeypatch.setattr(exporter_module, "object_key", key)
        return

    class Refused(ObjectUpload):
        def __init__(self, client: Any, bucket: str, key: str, **kw: Any) -> None:
            if "/refused/" in key:
                kw["extra_args"] = {**(kw.get("extra_args") or {}), "StorageClass": "NO_SUCH"}
            super().__init__(client, bucket, key, **kw)

    monkeypatch.setattr(exporter_module, "ObjectUpload", Refused)


async def test_one_tenants_refused_request_fails_alone_and_the_daemon_stays_ready(
    s3_endpoint: S3Endpoint,
    s3_bucket: str,
    dsn: str,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _refusing_hook(s3_endpoint.name, monkeypatch)
    # A threshold of 1: a single refusal counted as an outage would open it.
    # A lease of 15 s gives the name probe (a twelfth of the lease) time to
    # answer on a loaded machine: a probe that times out reads as an outage.
    timing = {**FAST, "lease_seconds": 15.0}
    settings = s3_settings(
        s3_endpoint, s3_bucket, database_url=dsn, storage_failure_threshold=1, **timing
    )
    refused = [
        await insert_job(pool, owner="refused", kind="small", max_attempts=2) for _ in range(3)
    ]
    others = [await insert_job(pool, owner=f"tenant{i}", kind="small") for i in range(4)]
    async with running_daemon(settings, KINDS) as daemon:

        async def settled() -> bool:
            rows = [await job_row(pool, i) for i in refused + others]
            return all(r["state"] in ("completed", "failed") for r in rows)

        await eventually(settled, timeout=30)
        code, body = await status(daemon.api_port, "/readyz")
        assert code == 200, body
        assert body["checks"]["storage_breaker"] == "ok"
        assert daemon.breaker.allows_claims
        assert daemon.breaker.times_opened == 0
    for job_id in refused:
        row = await job_row(pool, job_id)
        assert row["state"] == "failed"
        assert "retry" not in row["error"].lower()
        if s3_endpoint.name == "moto":
            assert row["error_kind"] == "storage_rejected"
            assert row["attempts"] == 1, "a refused request is not tried again"
        else:
            # rclone never answers this PutObject: a stall of this name alone,
            # tried again until the attempts are spent, never an outage.
            assert row["error_kind"] == "timeout"
            assert row["attempts"] == 2
            assert row["error"].endswith("gave up after 2 of 2 attempts")
    for job_id in others:
        assert (await job_row(pool, job_id))["state"] == "completed"
