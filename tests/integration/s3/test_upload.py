"""ObjectUpload and the S3 helpers against real servers (rclone and moto)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError
from structlog.testing import capture_logs

from exportd.errors import ErrorKind, ExportError
from exportd.s3 import upload as upload_module
from exportd.s3.client import S3Client, open_s3_client
from exportd.s3.objects import check_bucket, delete_object, list_open_uploads
from exportd.s3.presign import content_disposition, download_signer, open_presigner
from exportd.s3.upload import ObjectUpload, UploadResult
from tests.support.fixtures_s3 import S3Endpoint, free_port, s3_settings

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest part S3 accepts


def make_upload(client: S3Client, bucket: str, key: str, **overrides: Any) -> ObjectUpload:
    options: dict[str, Any] = {
        "part_size": PART,
        "parts_in_flight": 2,
        "content_type": "text/csv",
        "content_disposition": content_disposition("export.csv"),
    }
    options.update(overrides)
    return ObjectUpload(client, bucket, key, **options)


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def odd_chunks(data: bytes) -> Iterator[bytes]:
    """``data`` in chunks of awkward sizes, some larger than a part."""
    sizes = [1, 7919, 65_537, 1_000_003, 3, 6 * MIB + 17, 250_001]
    offset = 0
    i = 0
    while offset < len(data):
        size = sizes[i % len(sizes)]
        yield data[offset : offset + size]
        offset += size
        i += 1


async def download(client: S3Client, bucket: str, key: str) -> bytes:
    response = await client.get_object(Bucket=bucket, Key=key)
    async with response["Body"] as body:
        data: bytes = await body.read()
    return data


async def exists(client: S3Client, bucket: str, key: str) -> bool:
    try:
        await client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
    return True


async def assert_nothing_left(client: S3Client, bucket: str, key: str) -> None:
    assert await list_open_uploads(client, bucket, key) == []
    assert not await exists(client, bucket, key)


# --- writing objects ----------------------------------------------------------


async def test_empty_object_is_a_plain_put(s3_client: S3Client, s3_bucket: str) -> None:
    started: list[str] = []

    async def on_started(upload_id: str) -> None:
        started.append(upload_id)

    async with make_upload(
        s3_client, s3_bucket, "e/empty.csv", on_multipart_started=on_started
    ) as up:
        result = await up.complete()

    assert result == UploadResult(
        key="e/empty.csv", size_bytes=0, sha256_hex=hashlib.sha256(b"").hexdigest(), parts=0
    )
    assert started == []
    assert up.upload_id is None
    assert await download(s3_client, s3_bucket, "e/empty.csv") == b""


async def test_small_object_keeps_its_headers(s3_client: S3Client, s3_bucket: str) -> None:
    data = b"id,name\n" + b"".join(b"%d,n\xc3\xa4me %d\n" % (i, i) for i in range(1000))
    disposition = content_disposition("Übersicht.csv")
    async with make_upload(
        s3_client, s3_bucket, "s/small.csv", content_disposition=disposition
    ) as up:
        for chunk in odd_chunks(data):
            await up.write(chunk)
        assert up.bytes_written == len(data)
        result = await up.complete()

    assert result.parts == 0
    assert result.size_bytes == len(data)
    assert result.sha256_hex == hashlib.sha256(data).hexdigest()
    assert await download(s3_client, s3_bucket, "s/small.csv") == data
    head = await s3_client.head_object(Bucket=s3_bucket, Key="s/small.csv")
    assert head["ContentType"] == "text/csv"
    assert head["ContentDisposition"] == disposition


async def test_multipart_object_round_trips(s3_client: S3Client, s3_bucket: str) -> None:
    data = payload(12 * MIB + 12_345)
    started: list[str] = []

    async def on_started(upload_id: str) -> None:
        # The upload exists on the server by the time the caller hears of it.
        open_ids = [u["UploadId"] for u in await list_open_uploads(s3_client, s3_bucket, "m/")]
        assert upload_id in open_ids
        started.append(upload_id)

    async with make_upload(
        s3_client, s3_bucket, "m/big.bin", on_multipart_started=on_started
    ) as up:
        for chunk in odd_chunks(data):
            await up.write(chunk)
        result = await up.complete()

    assert result.parts == 3  # 5 MiB + 5 MiB + the rest
    assert result.size_bytes == len(data)
    assert result.sha256_hex == hashlib.sha256(data).hexdigest()
    assert started == [up.upload_id]
    assert await download(s3_client, s3_bucket, "m/big.bin") == data
    assert await list_open_uploads(s3_client, s3_bucket, "m/") == []


async def test_object_of_exactly_one_part_and_one_large_write(
    s3_client: S3Client, s3_bucket: str
) -> None:
    data = payload(PART, seed=2)
    async with make_upload(s3_client, s3_bucket, "x/one-part.bin") as up:
        await up.write(memoryview(data))
        result = await up.complete()
    assert result.parts == 1
    assert result.sha256_hex == hashlib.sha256(data).hexdigest()
    assert await download(s3_client, s3_bucket, "x/one-part.bin") == data


class CountingClient:
    """The real client, with the number of concurrent UploadPart calls recorded."""

    def __init__(self, client: S3Client) -> None:
        self._client = client
        self.running = 0
        self.peak = 0
        self.part_sizes: dict[int, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def upload_part(self, **kwargs: Any) -> Any:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.part_sizes[kwargs["PartNumber"]] = len(kwargs["Body"])
        try:
            # Slow enough that the producer catches up and must wait.
            await asyncio.sleep(0.2)
            return await self._client.upload_part(**kwargs)
        finally:
            self.running -= 1


@pytest.mark.parametrize("parts_in_flight", [1, 2])
async def test_parts_in_flight_are_bounded_and_equal_sized(
    s3_client: S3Client, s3_bucket: str, parts_in_flight: int
) -> None:
    counting = CountingClient(s3_client)
    data = payload(4 * PART + 100, seed=3)
    async with make_upload(
        counting, s3_bucket, "p/bounded.bin", parts_in_flight=parts_in_flight
    ) as up:
        for chunk in odd_chunks(data):
            await up.write(chunk)
            assert counting.running <= parts_in_flight
        result = await up.complete()

    assert counting.peak == parts_in_flight
    assert counting.part_sizes == {1: PART, 2: PART, 3: PART, 4: PART, 5: 100}
    assert result.parts == 5
    assert await download(s3_client, s3_bucket, "p/bounded.bin") == data


# --- aborting -------------------------------------------------------------------


async def test_abort_after_some_parts_leaves_nothing(s3_client: S3Client, s3_bucket: str) -> None:
    up = make_upload(s3_client, s3_bucket, "a/aborted.bin")
    await up.write(payload(2 * PART + 1))
    assert up.upload_id is not None
    open_uploads = await list_open_uploads(s3_client, s3_bucket, "a/")
    assert [u["UploadId"] for u in open_uploads] == [up.upload_id]

    await up.abort()
    await up.abort()  # idempotent

    await assert_nothing_left(s3_client, s3_bucket, "a/aborted.bin")
    with pytest.raises(RuntimeError, match="already finished"):
        await up.write(b"more")
    with pytest.raises(RuntimeError, match="already finished"):
        await up.complete()


async def test_abort_before_any_part_is_harmless(s3_client: S3Client, s3_bucket: str) -> None:
    up = make_upload(s3_client, s3_bucket, "a/tiny.csv")
    await up.write(b"a,b\n")
    await up.abort()
    await assert_nothing_left(s3_client, s3_bucket, "a/tiny.csv")


async def test_exception_inside_the_block_aborts(s3_client: S3Client, s3_bucket: str) -> None:
    async def produce() -> None:
        async with make_upload(s3_client, s3_bucket, "f/failed.bin") as up:
            await up.write(payload(PART + 10))
            assert up.upload_id is not None
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        await produce()
    await assert_nothing_left(s3_client, s3_bucket, "f/failed.bin")


async def test_cancellation_aborts(s3_client: S3Client, s3_bucket: str) -> None:
    parts_sent = asyncio.Event()

    async def produce() -> None:
        async with make_upload(s3_client, s3_bucket, "c/cancelled.bin") as up:
            await up.write(payload(PART + 10))
            parts_sent.set()
            await asyncio.sleep(3600)
            await up.complete()

    task = asyncio.create_task(produce())
    await parts_sent.wait()
    assert len(await list_open_uploads(s3_client, s3_bucket, "c/")) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_nothing_left(s3_client, s3_bucket, "c/cancelled.bin")


async def test_leaving_the_block_without_complete_is_an_error(
    s3_client: S3Client, s3_bucket: str
) -> None:
    with pytest.raises(RuntimeError, match="without complete"):
        async with make_upload(s3_client, s3_bucket, "f/forgotten.bin") as up:
            await up.write(payload(PART))
    await assert_nothing_left(s3_client, s3_bucket, "f/forgotten.bin")


async def test_exceeding_max_parts_is_too_large_and_aborts(
    s3_client: S3Client, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_module, "MAX_PARTS", 2)

    async def produce() -> None:
        async with make_upload(s3_client, s3_bucket, "t/too-large.bin") as up:
            await up.write(payload(2 * PART))  # exactly at the limit: accepted
            await up.write(b"x")

    with pytest.raises(ExportError) as caught:
        await produce()
    assert caught.value.kind is ErrorKind.TOO_LARGE
    assert f"{2 * PART:,} bytes" in caught.value.message
    assert "EXPORTD_S3_MAX_EXPORT_BYTES" in caught.value.message
    assert "EXPORTD_S3_PART_SIZE" in caught.value.message
    await assert_nothing_left(s3_client, s3_bucket, "t/too-large.bin")


async def test_exceeding_max_bytes_is_too_large_and_aborts(
    s3_client: S3Client, s3_bucket: str
) -> None:
    async def produce() -> None:
        async with make_upload(s3_client, s3_bucket, "t/over.bin", max_bytes=PART + 10) as up:
            await up.write(payload(PART))
            await up.write(payload(10))  # exactly at the limit: accepted
            await up.write(b"x")

    with pytest.raises(ExportError) as caught:
        await produce()
    assert caught.value.kind is ErrorKind.TOO_LARGE
    assert f"{PART + 10:,} bytes" in caught.value.message
    await assert_nothing_left(s3_client, s3_bucket, "t/over.bin")


async def test_flush_sends_every_part_so_complete_is_one_request(
    s3_client: S3Client, s3_bucket: str
) -> None:
    data = payload(2 * PART + 777, seed=9)
    async with make_upload(s3_client, s3_bucket, "f/flushed.bin") as up:
        await up.write(data)
        await up.flush()
        calls: list[str] = []
        # The botocore client under DeadlineClient's deadlines.
        botocore_client = s3_client._client
        original = botocore_client._make_api_call

        async def spy(operation: str, params: Any) -> Any:
            calls.append(operation)
            return await original(operation, params)

        botocore_client._make_api_call = spy
        try:
            with pytest.raises(RuntimeError):
                await up.write(b"late")
            result = await up.complete()
        finally:
            botocore_client._make_api_call = original
    assert calls == ["CompleteMultipartUpload"]
    assert result.parts == 3
    assert await download(s3_client, s3_bucket, "f/flushed.bin") == data


async def test_object_at_max_parts_completes(
    s3_client: S3Client, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload_module, "MAX_PARTS", 2)
    data = payload(2 * PART, seed=4)
    async with make_upload(s3_client, s3_bucket, "t/at-limit.bin") as up:
        await up.write(data)
        result = await up.complete()
    assert result.parts == 2
    assert await download(s3_client, s3_bucket, "t/at-limit.bin") == data


async def test_failed_part_surfaces_as_export_error(
    s3_client: S3Client, s3_bucket: str, s3_endpoint: S3Endpoint
) -> None:
    # Aborting the upload behind the writer's back makes its next part fail.
    async def abort_behind_its_back(upload_id: str) -> None:
        await s3_client.abort_multipart_upload(
            Bucket=s3_bucket, Key="f/lost.bin", UploadId=upload_id
        )

    up = make_upload(s3_client, s3_bucket, "f/lost.bin", on_multipart_started=abort_behind_its_back)

    async def produce() -> None:
        async with up:
            await up.write(payload(PART + 10))
            await up.complete()

    with capture_logs() as logs, pytest.raises(ExportError) as caught:
        await produce()

    error = caught.value
    assert error.kind is ErrorKind.STORAGE_UNAVAILABLE
    assert "UploadPart" in error.message
    assert repr(s3_bucket) in error.message
    # rclone answers NoSuchUpload; moto fails with a 500 instead.
    assert ("NoSuchUpload" if s3_endpoint.name == "rclone" else "500") in error.message
    # The cleanup abort then finds no upload, and says so without raising.
    assert [entry["event"] for entry in logs] == ["s3_abort_failed"]
    assert logs[0]["key"] == "f/lost.bin"
    assert logs[0]["upload_id"] == up.upload_id
    assert logs[0]["log_level"] == "warning"
    await assert_nothing_left(s3_client, s3_bucket, "f/lost.bin")


# --- helpers around objects -----------------------------------------------------


async def presigned(
    endpoint: S3Endpoint,
    client: S3Client,
    bucket: str,
    key: str,
    filename: str,
    lifetime: timedelta,
) -> str:
    """A download URL as the API makes it."""
    presigner = await open_presigner(s3_settings(endpoint, bucket), client)
    return await download_signer(presigner)(key, filename, lifetime)


async def test_presigned_download_names_the_file(
    s3_client: S3Client, s3_bucket: str, s3_endpoint: S3Endpoint
) -> None:
    data = b"a,b\n1,2\n"
    async with make_upload(s3_client, s3_bucket, "d/report.csv") as up:
        await up.write(data)
        await up.complete()

    filename = "Übersicht März.csv"
    url = await presigned(
        s3_endpoint, s3_client, s3_bucket, "d/report.csv", filename, timedelta(minutes=5)
    )
    assert "X-Amz-Signature=" in url  # SigV4, which rclone requires
    assert "X-Amz-Expires=300&" in url
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert await response.read() == data
        # Both servers echo the requested disposition verbatim.
        assert response.headers["Content-Disposition"] == content_disposition(filename)
        assert 'filename="Ubersicht Marz.csv"' in response.headers["Content-Disposition"]


async def test_presigned_url_covers_only_its_object(
    s3_client: S3Client, s3_bucket: str, s3_endpoint: S3Endpoint
) -> None:
    await s3_client.put_object(Bucket=s3_bucket, Key="d/mine.csv", Body=b"mine")
    await s3_client.put_object(Bucket=s3_bucket, Key="d/other.csv", Body=b"other")
    url = await presigned(
        s3_endpoint, s3_client, s3_bucket, "d/mine.csv", "m.csv", timedelta(hours=2)
    )
    assert "X-Amz-Expires=7200&" in url
    tampered = url.replace("/d/mine.csv?", "/d/other.csv?")
    assert tampered != url
    async with aiohttp.ClientSession() as session, session.get(tampered) as response:
        if s3_endpoint.name == "rclone":
            assert response.status == 403
            assert b"SignatureDoesNotMatch" in await response.read()
        else:
            # moto's server does not verify presigned signatures (nor expiry).
            assert response.status == 200


async def test_check_bucket_and_delete_object(s3_client: S3Client, s3_bucket: str) -> None:
    await check_bucket(s3_client, s3_bucket)
    await s3_client.put_object(Bucket=s3_bucket, Key="d/gone.csv", Body=b"x")
    await delete_object(s3_client, s3_bucket, "d/gone.csv")
    assert not await exists(s3_client, s3_bucket, "d/gone.csv")


async def test_missing_bucket_is_storage_unavailable(s3_client: S3Client) -> None:
    with pytest.raises(ExportError) as caught:
        await check_bucket(s3_client, "exportd-no-such-bucket")
    assert caught.value.kind is ErrorKind.STORAGE_UNAVAILABLE
    assert "NoSuchBucket" in caught.value.message
    assert "EXPORTD_S3_BUCKET" in caught.value.message


async def test_list_open_uploads_pages_through_everything(
    s3_client: S3Client, s3_bucket: str
) -> None:
    ids = set()
    for i in range(3):
        response = await s3_client.create_multipart_upload(Bucket=s3_bucket, Key=f"l/{i}")
        ids.add(response["UploadId"])
    await s3_client.create_multipart_upload(Bucket=s3_bucket, Key="elsewhere/x")

    uploads = await list_open_uploads(s3_client, s3_bucket, "l/")
    assert {u["UploadId"] for u in uploads} == ids
    assert sorted(u["Key"] for u in uploads) == ["l/0", "l/1", "l/2"]


@pytest.mark.parametrize(
    "overrides",
    [{"s3_secret_access_key": "wrong-secret"}, {"s3_access_key_id": "wrong-key-id"}],
    ids=["wrong-secret", "wrong-key"],
)
async def test_wrong_credentials(
    s3_endpoint: S3Endpoint, s3_bucket: str, overrides: dict[str, str]
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        client = await open_s3_client(s3_settings(s3_endpoint, s3_bucket, **overrides), stack)
        up = make_upload(client, s3_bucket, "w/denied.csv")
        await up.write(b"a\n")
        if s3_endpoint.name == "moto":
            # moto's server accepts any credentials unless IAM emulation is on.
            await up.complete()
            return
        with pytest.raises(ExportError) as caught:
            await up.complete()
        await up.abort()
        with pytest.raises(ExportError) as head_caught:
            await check_bucket(client, s3_bucket)

    assert caught.value.kind is ErrorKind.ACCESS_DENIED
    code = "SignatureDoesNotMatch" if "s3_secret_access_key" in overrides else "InvalidAccessKeyId"
    assert f"S3 refused PutObject on bucket {s3_bucket!r}: {code}" in caught.value.message
    assert "wrong-secret" not in caught.value.message
    # HEAD answers carry no error body: only the status is known.
    assert head_caught.value.kind is ErrorKind.ACCESS_DENIED
    assert "HeadBucket" in head_caught.value.message
    assert "s3:ListBucket" in head_caught.value.message


async def test_closed_port_is_storage_unavailable() -> None:
    endpoint = S3Endpoint("closed", f"http://127.0.0.1:{free_port()}", "exportdkey", "x" * 12)
    async with contextlib.AsyncExitStack() as stack:
        client = await open_s3_client(s3_settings(endpoint, "exportd-closed"), stack)
        up = make_upload(client, "exportd-closed", "k")
        # Concurrently, because each waits through the client's retries.
        head_error, put_error = await asyncio.gather(
            check_bucket(client, "exportd-closed"), up.complete(), return_exceptions=True
        )
        await up.abort()
    for error in (head_error, put_error):
        assert isinstance(error, ExportError)
        assert error.kind is ErrorKind.STORAGE_UNAVAILABLE
        assert "EXPORTD_S3_ENDPOINT_URL" in error.message
    assert "HeadBucket on bucket 'exportd-closed'" in str(head_error)
    assert "PutObject on bucket 'exportd-closed'" in str(put_error)


# --- classify_s3_error without a server -------------------------------------------


async def test_each_part_is_signed_with_the_sha256_of_its_own_bytes(
    s3_client: S3Client, s3_bucket: str
) -> None:
    sent: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        sent.append(
            {
                k.lower(): v.decode() if isinstance(v, bytes) else str(v)
                for k, v in request.headers.items()
            }
        )

    s3_client.meta.events.register("before-send.s3.UploadPart", record)
    data = payload(PART + 10)
    async with make_upload(s3_client, s3_bucket, "signed.bin") as up:
        await up.write(data)
        await up.complete()
    # The signature covers each body (a part handed over whole, not a copy), and
    # the store checks it on arrival.
    hashes = [hashlib.sha256(data[:PART]).hexdigest(), hashlib.sha256(data[PART:]).hexdigest()]
    assert [h["x-amz-content-sha256"] for h in sent] == hashes
    assert await download(s3_client, s3_bucket, "signed.bin") == data
