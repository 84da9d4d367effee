"""Files datasets on both S3 servers: stored objects streamed into the zip bundle.

A "my data" kind (orders as CSV, a profile as JSON, receipts copied from a source
bucket under files/) is run by a whole daemon; the zip is read back with Python's
zipfile and every member checked against the objects and the manifest. Then the
policies (a missing object fails or is listed), a key outside the allowed prefix
(refused before any GET reaches the store), a source outage mid-bundle (retried,
then completed) and a cancel mid-bundle (no open upload, no object).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import zipfile
from typing import Any

import asyncpg
import botocore.session
from aiohttp import web

from exportd.s3.client import open_s3_client
from exportd.s3.objects import list_open_uploads
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, botocore_config, create_bucket, s3_settings
from tests.support.helpers import download_job, eventually, insert_job, job_row, wait_for_state
from tests.support.s3_proxy import failing_proxy

MIB = 1024 * 1024
SMALL = 200

KINDS = """
[kinds.my-data]
filename = "my-data"
missing_files = "{policy}"
[kinds.my-data.datasets.orders]
query = '''
SELECT g AS id, g * 10 AS cents FROM generate_series(1, 120) AS g WHERE :owner <> '' ORDER BY g
'''
[kinds.my-data.datasets.profile]
format = "jsonl"
query = "SELECT :owner AS owner, 'Ann' AS name"
[kinds.my-data.datasets.receipts]
output = "files"
query = '''
SELECT key, path, size, sha256 FROM files_under_test WHERE :owner <> '' ORDER BY n
'''
"""


def source_client(endpoint: S3Endpoint) -> Any:
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint.url,
        region_name="us-east-1",
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        config=botocore_config(),
    )


async def stored_files(
    pool: asyncpg.Pool, endpoint: S3Endpoint, bucket: str, files: list[tuple[str, str, bytes]]
) -> None:
    """Put each (key, path, body) in ``bucket`` and a row for it in files_under_test."""
    client = source_client(endpoint)
    try:
        for key, _, body in files:
            client.put_object(Bucket=bucket, Key=key, Body=body)
    finally:
        client.close()
    await pool.execute(
        "CREATE TABLE files_under_test (n serial, key text, path text, size bigint, sha256 text)"
    )
    await pool.executemany(
        "INSERT INTO files_under_test (key, path, size, sha256) VALUES ($1, $2, $3, $4)",
        [(key, path, len(body), hashlib.sha256(body).hexdigest()) for key, path, body in files],
    )


def small_files() -> list[tuple[str, str, bytes]]:
    return [
        (f"receipts/ann/{n:03d}.txt", f"{n:03d}/receipt.txt", f"receipt {n}\n".encode() * 50)
        for n in range(SMALL)
    ]


async def no_leftovers(endpoint: S3Endpoint, bucket: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        client = await open_s3_client(s3_settings(endpoint, bucket), stack)
        assert await list_open_uploads(client, bucket, "") == []


def read_zip(body: bytes) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    bundle = zipfile.ZipFile(io.BytesIO(body))
    assert bundle.testzip() is None
    return bundle, json.loads(bundle.read("manifest.json"))


async def test_a_my_data_bundle_with_200_files_and_a_large_one(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    source = create_bucket(s3_endpoint)
    big = os.urandom(17 * MIB)  # more than three 5 MiB parts, and incompressible
    files = [*small_files(), ("receipts/ann/scan.bin", "scan.bin", big)]
    await stored_files(pool, s3_endpoint, source, files)
    settings = s3_settings(
        s3_endpoint, s3_bucket, database_url=dsn, files_sources=[f"{source}/receipts"], **FAST
    )
    job_id = await insert_job(pool, owner="ann", kind="my-data", fmt="zip")
    async with running_daemon(settings, KINDS.format(policy="fail")) as daemon:
        row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=120)
        assert row["state"] == "completed", row["error"]
        body, headers = await download_job(daemon.api_port, job_id)

    bundle, manifest = read_zip(body)
    names = bundle.namelist()
    assert names[:2] == ["orders.csv", "profile.jsonl"]
    assert names[-1] == "manifest.json"
    expected = {f"files/receipts/{path}": content for _, path, content in files}
    assert names[2:-1] == list(expected)
    for name, content in expected.items():
        assert bundle.read(name) == content
    assert bundle.getinfo("files/receipts/scan.bin").compress_type == zipfile.ZIP_STORED
    assert bundle.getinfo("files/receipts/000/receipt.txt").compress_type == zipfile.ZIP_DEFLATED
    members = {m["name"]: m for m in manifest["members"]}
    assert list(members) == names[:-1]
    for key, path, content in files:
        entry = members[f"files/receipts/{path}"]
        assert entry["source"] == {"bucket": source, "key": key}
        assert entry["bytes"] == len(content)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert entry["format"] == "file"
        assert entry["rows"] is None
    assert manifest["file_problems"] == []
    assert json.loads(bundle.read("profile.jsonl")) == {"owner": "ann", "name": "Ann"}
    # rows_written counts rows, never files: 120 orders and one profile.
    assert row["row_count"] == row["rows_written"] == 121
    assert row["size_bytes"] == len(body) > len(big)
    assert headers["Content-Type"] == "application/zip"
    await no_leftovers(s3_endpoint, s3_bucket)


async def test_missing_and_changed_objects_under_each_policy(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    source = create_bucket(s3_endpoint)
    files = [("receipts/a.txt", "a.txt", b"a" * 100), ("receipts/b.txt", "b.txt", b"b" * 100)]
    await stored_files(pool, s3_endpoint, source, files)
    await pool.execute(
        "INSERT INTO files_under_test (key, path) VALUES ('receipts/gone.pdf', 'gone.pdf')"
    )
    # b.txt's row says another checksum: the object changed since its row was written.
    await pool.execute("UPDATE files_under_test SET sha256 = repeat('0', 64) WHERE path = 'b.txt'")
    settings = s3_settings(
        s3_endpoint, s3_bucket, database_url=dsn, files_sources=[f"{source}/receipts/"], **FAST
    )
    failing = await insert_job(pool, owner="ann", kind="my-data", fmt="zip")
    async with running_daemon(settings, KINDS.format(policy="fail")):
        row = await wait_for_state(pool, failing, {"completed", "failed"}, timeout=60)
    assert (row["state"], row["error_kind"], row["attempts"]) == ("failed", "not_found", 1)
    assert "receipts/b.txt" in row["error"]
    assert "SHA-256" in row["error"]

    listed = await insert_job(pool, owner="ann", kind="my-data", fmt="zip")
    async with running_daemon(settings, KINDS.format(policy="list")) as daemon:
        row = await wait_for_state(pool, listed, {"completed", "failed"}, timeout=60)
        assert row["state"] == "completed", row["error"]
        body, _ = await download_job(daemon.api_port, listed)
    bundle, manifest = read_zip(body)
    assert [n for n in bundle.namelist() if n.startswith("files/")] == [
        "files/receipts/a.txt",
        "files/receipts/b.txt",
    ]
    problems = {p["key"]: p for p in manifest["file_problems"]}
    assert problems["receipts/gone.pdf"]["problem"] == "missing"
    assert problems["receipts/gone.pdf"]["name"] is None
    assert problems["receipts/b.txt"]["problem"] == "sha256"
    assert problems["receipts/b.txt"]["name"] == "files/receipts/b.txt"
    await no_leftovers(s3_endpoint, s3_bucket)


async def test_a_key_outside_the_sources_fails_before_any_object_is_read(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    source = create_bucket(s3_endpoint)
    files = [
        ("receipts/a.txt", "a.txt", b"a"),
        ("receipts-old/b.txt", "b.txt", b"b"),  # a neighbour of the prefix, not under it
    ]
    await stored_files(pool, s3_endpoint, source, files)
    requests: list[str] = []

    def seen(request: web.Request) -> bool:
        requests.append(f"{request.method} {request.path}")
        return False

    async with failing_proxy(s3_endpoint.url) as proxy:
        proxy.hold = seen
        settings = s3_settings(
            s3_endpoint,
            s3_bucket,
            database_url=dsn,
            files_sources=[f"{source}/receipts"],
            files_s3_endpoint_url=proxy.url,
            **FAST,
        )
        job_id = await insert_job(pool, owner="ann", kind="my-data", fmt="zip")
        async with running_daemon(settings, KINDS.format(policy="list")):
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
    assert (row["state"], row["error_kind"]) == ("failed", "access_denied")
    assert "'receipts-old/b.txt'" in row["error"]
    assert "EXPORTD_FILES_SOURCES" in row["error"]
    assert requests == []  # the source store saw no request at all
    assert row["object_key"] is None
    await no_leftovers(s3_endpoint, s3_bucket)


async def test_a_source_outage_mid_bundle_is_retried_then_completes(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    source = create_bucket(s3_endpoint)
    files = small_files()[:60]
    await stored_files(pool, s3_endpoint, source, files)
    gets = 0

    def count(request: web.Request) -> bool:
        nonlocal gets
        if request.method == "GET" and "/receipts/" in request.path:
            gets += 1
            if gets == 30:
                proxy.failing = True  # from the 30th object on, the store answers 503
        return False

    async with failing_proxy(s3_endpoint.url) as proxy:
        proxy.hold = count
        settings = s3_settings(
            s3_endpoint,
            s3_bucket,
            database_url=dsn,
            files_sources=[source],
            files_s3_endpoint_url=proxy.url,
            **FAST,
        )
        job_id = await insert_job(pool, owner="ann", kind="my-data", fmt="zip")
        async with running_daemon(settings, KINDS.format(policy="fail")) as daemon:

            async def retried() -> Any:
                row = await job_row(pool, job_id)
                return row if row["error_kind"] == "storage_unavailable" else None

            row = await eventually(retried, timeout=60)
            assert row["state"] in ("pending", "processing")
            proxy.failing = False
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
            assert row["state"] == "completed", row["error"]
            body, _ = await download_job(daemon.api_port, job_id)
    assert row["attempts"] >= 2
    assert proxy.refused > 0
    bundle, _manifest = read_zip(body)
    assert len([n for n in bundle.namelist() if n.startswith("files/")]) == 60
    await no_leftovers(s3_endpoint, s3_bucket)


async def test_cancel_mid_bundle_leaves_no_upload_and_no_object(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    source = create_bucket(s3_endpoint)
    files = [
        ("receipts/one.bin", "one.bin", os.urandom(12 * MIB)),
        ("receipts/two.bin", "two.bin", os.urandom(MIB)),
    ]
    await stored_files(pool, s3_endpoint, source, files)

    def hold_second(request: web.Request) -> bool:
        return request.method == "GET" and request.path.endswith("/receipts/two.bin")

    async with failing_proxy(s3_endpoint.url) as proxy:
        proxy.hold = hold_second
        settings = s3_settings(
            s3_endpoint,
            s3_bucket,
            database_url=dsn,
            files_sources=[source],
            files_s3_endpoint_url=proxy.url,
            **FAST,
        )
        job_id = await insert_job(pool, owner="ann", kind="my-data", fmt="zip")
        async with running_daemon(settings, KINDS.format(policy="fail")):

            async def held() -> bool:
                return proxy.held > 0

            await eventually(held, timeout=60)
            # The first object's parts went up: a multipart upload is open.
            row = await job_row(pool, job_id)
            assert row["upload_id"] is not None
            await pool.execute("SELECT exportd.cancel($1)", job_id)
            row = await wait_for_state(pool, job_id, {"cancelled"}, timeout=30)

            async def cleaned() -> bool:
                async with contextlib.AsyncExitStack() as stack:
                    client = await open_s3_client(s3_settings(s3_endpoint, s3_bucket), stack)
                    open_uploads = await list_open_uploads(client, s3_bucket, "")
                    listed = await client.list_objects_v2(Bucket=s3_bucket)
                return not open_uploads and not listed.get("Contents")

            await eventually(cleaned, timeout=30)
