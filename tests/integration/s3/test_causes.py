"""S3 failures classified by cause: a job's refused request is that job's
permanent failure and never stops the other tenants; only outages retry and
feed the storage circuit breaker. Against rclone and moto, and in a daemon."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import asyncpg
import pytest

from exportd.errors import STORAGE_OUTAGES, ErrorKind, ExportError
from exportd.export import target as exporter_module
from exportd.export.keys import object_key, write_probe_key
from exportd.s3.client import S3Client, open_s3_client
from exportd.s3.presign import content_disposition
from exportd.s3.upload import ObjectUpload
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.daemon_process import status
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, s3_settings
from tests.support.helpers import eventually, insert_job, job_row
from tests.support.s3_proxy import failing_proxy

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
_REJECTED = ErrorKind.STORAGE_REJECTED
REFUSALS: dict[str, list[tuple[str, str, int, dict[str, Any], str, ErrorKind]]] = {
    "rclone": [
        ("dot-dot segment", f"exports/../{_JOB}/f.csv", 10, {}, "InvalidArgument", _REJECTED),
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
        assert row["error_kind"] == "storage_rejected"
        assert row["attempts"] == 1, "a refused request is not tried again"
    for job_id in others:
        assert (await job_row(pool, job_id))["state"] == "completed"
