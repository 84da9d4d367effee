"""Files datasets at their edges, on both S3 servers: keys the data may hold (literal
``%2e%2e``, keys that differ only by case or by Unicode normal form, a key longer than
S3 allows), an empty object, a job with ``split_rows``, and formats that cannot hold
stored files."""

from __future__ import annotations

import hashlib

import asyncpg

from tests.integration.export.test_files import KINDS, read_zip, stored_files
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, s3_settings
from tests.support.helpers import download_job, insert_job, wait_for_state

LONG_KEY = "receipts/" + "k" * 1100  # S3 keys hold at most 1024 bytes: it cannot exist

FILES = [
    ("receipts/%2e%2e/dots.txt", "%2e%2e/dots.txt", b"literal percent signs\n"),
    ("receipts/Case.txt", "Case.txt", b"upper\n"),
    ("receipts/case.txt", "case.txt", b"lower\n"),
    ("receipts/Cafe\u0301.txt", "Cafe\u0301.txt", b"decomposed\n"),
    ("receipts/Caf\u00e9.txt", "Caf\u00e9.txt", b"composed\n"),
    ("receipts/empty.txt", "empty.txt", b""),
]


async def test_awkward_keys_an_empty_object_and_a_key_too_long_to_exist(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    source = create_bucket(s3_endpoint)
    await stored_files(pool, s3_endpoint, source, FILES)
    await pool.execute("INSERT INTO files_under_test (key, path) VALUES ($1, 'long.txt')", LONG_KEY)
    settings = s3_settings(
        s3_endpoint, s3_bucket, database_url=dsn, files_sources=[f"{source}/receipts/"], **FAST
    )
    job_id = await insert_job(pool, owner="ann", kind="my-data", fmt="zip")
    async with running_daemon(settings, KINDS.format(policy="list")) as daemon:
        row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
        assert row["state"] == "completed", row["error"]
        body, _ = await download_job(daemon.api_port, job_id)
    bundle, manifest = read_zip(body)
    by_key = {m["source"]["key"]: m for m in manifest["members"] if "source" in m}
    # Each object is read by its exact key and lands in a member of its own: keys that
    # differ by case or normal form get a numbered suffix, never each other's bytes.
    assert set(by_key) == {key for key, _, _ in FILES}
    for key, _, content in FILES:
        entry = by_key[key]
        assert bundle.read(entry["name"]) == content
        assert entry["bytes"] == len(content)
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    assert by_key["receipts/%2e%2e/dots.txt"]["name"] == "files/receipts/%2e%2e/dots.txt"
    assert by_key["receipts/case.txt"]["name"] == "files/receipts/case (2).txt"
    assert by_key["receipts/Caf\u00e9.txt"]["name"] == "files/receipts/Caf\u00e9 (2).txt"
    assert bundle.getinfo("files/receipts/empty.txt").file_size == 0
    [problem] = manifest["file_problems"]
    assert (problem["key"], problem["problem"]) == (LONG_KEY, "missing")


async def test_split_rows_splits_the_rows_and_never_the_files(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    source = create_bucket(s3_endpoint)
    await stored_files(pool, s3_endpoint, source, FILES[:2])
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, files_sources=[source], **FAST)
    job_id = await insert_job(pool, owner="ann", kind="my-data", fmt="zip")
    await pool.execute(
        "UPDATE exportd.jobs SET options = $2 WHERE id = $1", job_id, {"split_rows": 50}
    )
    async with running_daemon(settings, KINDS.format(policy="fail")) as daemon:
        row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
        assert row["state"] == "completed", row["error"]
        body, _ = await download_job(daemon.api_port, job_id)
    bundle, _ = read_zip(body)
    names = bundle.namelist()
    orders = [n for n in names if n.startswith("orders")]
    assert len(orders) == 3, names  # 120 rows in parts of at most 50
    assert [n for n in names if n.startswith("files/")] == [
        "files/receipts/%2e%2e/dots.txt",
        "files/receipts/Case.txt",
    ]
    assert row["rows_written"] == 121


async def test_formats_that_cannot_hold_stored_files_fail_clearly(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    source = create_bucket(s3_endpoint)
    await stored_files(pool, s3_endpoint, source, FILES[:1])
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, files_sources=[source], **FAST)
    jobs = {
        fmt: await insert_job(pool, owner="ann", kind="my-data", fmt=fmt) for fmt in ("xlsx", "csv")
    }
    async with running_daemon(settings, KINDS.format(policy="fail")):
        for fmt, job_id in jobs.items():
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
            assert (row["state"], row["error_kind"]) == ("failed", "unsupported_format")
            assert row["attempts"] == 1
            assert "bundles stored files (receipts), which only a zip can hold" in row["error"]
            assert f"not a {fmt} file: ask for format zip" in row["error"]
