"""The export engine's guarantees that are not about one format: Python handlers,
per-kind limits, injection attempts, encryption and progress."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import zipfile
from pathlib import Path

import asyncpg
import pytest

from exportd import database
from exportd.errors import ErrorKind, ExportError
from exportd.export.sources import SinkGuard, copy_csv
from exportd.s3.client import open_s3_client
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, s3_settings
from tests.support.helpers import (
    clean_env,
    deployment_env,
    download_job,
    eventually,
    exportd,
    insert_job,
    job_count,
    job_row,
    wait_for_state,
)

HANDLERS = """
[kinds.squares]
handler = "tests.support.custom_kinds:squares"
[kinds.squares.params.upto]
type = "integer"
max = 5000

[kinds.report]
filename = "report"
[kinds.report.datasets.report]
handler = "tests.support.custom_kinds.report_pdf"
output = "bytes"
extension = "pdf"
[kinds.report.datasets.numbers]
query = "SELECT g FROM generate_series(1, 3) AS g WHERE :owner <> ''"

[kinds.pdf]
handler = "tests.support.custom_kinds:report_pdf"
output = "bytes"
extension = "pdf"

[kinds.ink]
handler = "tests.support.custom_kinds:broken"
"""


async def test_python_handlers_stream_rows_and_files(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn, **FAST)
    async with running_daemon(settings, HANDLERS) as daemon:
        jsonl = await insert_job(
            pool, owner="ann", kind="squares", params={"upto": 2500}, fmt="jsonl"
        )
        small = await insert_job(pool, owner="ann", kind="squares", params={"upto": 3})
        report = await insert_job(pool, owner="ann", kind="report", fmt="zip")
        not_zip = await insert_job(pool, owner="ann", kind="pdf", fmt="csv")
        ink = await insert_job(pool, owner="ann", kind="ink", max_attempts=1)
        ink_zip = await insert_job(pool, owner="ann", kind="ink", fmt="zip", max_attempts=1)
        rows = {
            job_id: await wait_for_state(pool, job_id, {"completed", "failed"})
            for job_id in (jsonl, small, report, not_zip, ink, ink_zip)
        }
        bodies = {
            job_id: (await download_job(daemon.api_port, job_id))[0]
            for job_id in (jsonl, small, report)
            if rows[job_id]["state"] == "completed"
        }

    assert rows[jsonl]["state"] == "completed", rows[jsonl]["error"]
    lines = bodies[jsonl].decode().splitlines()
    assert len(lines) == rows[jsonl]["row_count"] == 2500
    first = json.loads(lines[0])
    assert first == {"n": 1, "square": 1, "half": 0.5, "owner": "ann", "blob": "AQ=="}
    assert base64.b64decode(json.loads(lines[-1])["blob"]) == bytes([2500 % 256])
    assert bodies[small].decode() == (
        "n,square,half,owner,blob\n1,1,0.5,ann,\\x01\n2,4,1,ann,\\x02\n3,9,1.5,ann,\\x03\n"
    )
    assert rows[report]["state"] == "completed", rows[report]["error"]
    with zipfile.ZipFile(io.BytesIO(bodies[report])) as bundle:
        assert bundle.namelist() == ["report.pdf", "numbers.csv", "manifest.json"]
        assert bundle.read("report.pdf").startswith(b"%PDF-1.4\n% report for ann\n")
        manifest = json.loads(bundle.read("manifest.json"))
    assert [(m["name"], m["rows"]) for m in manifest["members"]] == [
        ("report.pdf", None),
        ("numbers.csv", 3),
    ]
    assert (rows[not_zip]["state"], rows[not_zip]["error_kind"]) == ("failed", "unsupported_format")
    assert "pdf" in rows[not_zip]["error"]
    for failed in (ink, ink_zip):
        assert rows[failed]["state"] == "failed"
        assert "ran out of ink" in rows[failed]["error"]


LIMITS = """
[kinds.bulky]
max_bytes = 1000
query = "SELECT g, repeat('x', 100) FROM generate_series(1, 100) AS g WHERE :owner <> ''"

[kinds.sluggish]
max_duration = 1
timeout = 60
query = "SELECT pg_sleep(30) WHERE :owner <> ''"
"""


async def test_a_kind_over_its_size_or_duration_limit_fails_for_good(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(rclone_server, create_bucket(rclone_server), database_url=dsn, **FAST)
    async with running_daemon(settings, LIMITS):
        bulky = await insert_job(pool, kind="bulky")
        sluggish = await insert_job(pool, kind="sluggish")
        big = await wait_for_state(pool, bulky, {"completed", "failed"})
        slow = await wait_for_state(pool, sluggish, {"completed", "failed"})
    assert (big["state"], big["error_kind"], big["attempts"]) == ("failed", "too_large", 1)
    assert "max_bytes of kind 'bulky'" in big["error"]
    assert (slow["state"], slow["error_kind"], slow["attempts"]) == ("failed", "too_long", 1)
    assert "max_duration of kind 'sluggish'" in slow["error"]
    # The query was stopped within seconds, not left running for its 30 s.

    async def stopped() -> bool:
        return bool(
            await pool.fetchval(
                "SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%'"
                " AND state = 'active' AND pid <> pg_backend_pid()"
            )
        )

    await eventually(stopped, timeout=10)


INJECTION = """
[kinds.echo]
query = "SELECT :text AS echoed, :tags AS tags, count(*) AS victims FROM victims WHERE :owner <> ''"
[kinds.echo.params.text]
type = "string"
[kinds.echo.params.tags]
type = "list"
items = "string"
default = []
"""
ATTEMPTS = [
    "x'); DROP TABLE victims; --",
    "'; DELETE FROM victims; SELECT '",
    "$$; DROP TABLE victims; $$",
    "\\'; DROP TABLE victims; --",
    "E'\\\\'); DROP TABLE victims; --",
    ":owner",
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_injection_through_params_is_inert(
    fmt: str, rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool
) -> None:
    await pool.execute("CREATE TABLE victims (id int); INSERT INTO victims VALUES (1), (2)")
    settings = s3_settings(rclone_server, create_bucket(rclone_server), database_url=dsn, **FAST)
    async with running_daemon(settings, INJECTION) as daemon:
        jobs = [
            await insert_job(
                pool,
                owner="o'; DROP TABLE victims; --",
                kind="echo",
                fmt=fmt,
                params={"text": attempt, "tags": [attempt, "'"]},
            )
            for attempt in ATTEMPTS
        ]
        bodies = []
        for job_id in jobs:
            row = await wait_for_state(pool, job_id, {"completed", "failed"})
            assert row["state"] == "completed", row["error"]
            bodies.append((await download_job(daemon.api_port, job_id))[0])
    assert await pool.fetchval("SELECT count(*) FROM victims") == 2
    for attempt, body in zip(ATTEMPTS, bodies, strict=True):
        if fmt == "jsonl":
            assert json.loads(body) == {"echoed": attempt, "tags": [attempt, "'"], "victims": 2}
        else:
            (header, values) = list(csv.reader(io.StringIO(body.decode())))
            assert header == ["echoed", "tags", "victims"]
            assert values[0] == attempt
            assert values[2] == "2"


async def test_server_side_encryption_is_requested_for_every_object(
    moto_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # moto records the encryption asked for; rclone serves from plain files.
    bucket = create_bucket(moto_server)
    settings = s3_settings(moto_server, bucket, database_url=dsn, s3_sse="AES256", **FAST)
    definitions = """
[kinds.small]
query = "SELECT 1 AS one WHERE :owner <> ''"
[kinds.large]
query = "SELECT g, md5(g::text) FROM generate_series(1, 200000) AS g WHERE :owner <> ''"
"""
    async with running_daemon(settings, definitions):
        small = await insert_job(pool, kind="small")
        large = await insert_job(pool, kind="large")
        keys = [
            (await wait_for_state(pool, job_id, {"completed", "failed"}))["object_key"]
            for job_id in (small, large)
        ]
    async with contextlib.AsyncExitStack() as stack:
        s3 = await open_s3_client(settings, stack)
        for key in keys:
            assert key is not None
            head = await s3.head_object(Bucket=bucket, Key=key)
            assert head["ServerSideEncryption"] == "AES256"


SLOW = """
[kinds.slow]
query = '''
SELECT g AS n, E'two\\nlines, "quoted"' AS note,
       CASE WHEN g > 200 THEN pg_sleep(0.02)::text END AS nap
FROM generate_series(1, 600) AS g
WHERE :owner <> ''
'''
"""


async def test_progress_moves_during_the_export_and_reaches_100_only_at_the_end(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool
) -> None:
    settings = s3_settings(rclone_server, create_bucket(rclone_server), database_url=dsn, **FAST)
    seen: list[tuple[int, int, int]] = []
    async with running_daemon(settings, SLOW):
        job_id = await insert_job(pool, kind="slow")

        async def moving() -> bool:
            row = await job_row(pool, job_id)
            if row["state"] == "processing":
                seen.append((row["progress"], row["rows_written"], row["bytes_written"]))
            return any(0 < progress < 100 and rows > 0 for progress, rows, _ in seen)

        await eventually(moving, timeout=30)
        done = await wait_for_state(pool, job_id, {"completed", "failed"})
    assert done["state"] == "completed", done["error"]
    assert (done["progress"], done["rows_written"]) == (100, 600)
    assert all(progress < 100 for progress, _, _ in seen)
    # Rows are records, not lines: every record here holds a newline.
    assert all(rows <= 600 for _, rows, _ in seen)
    assert any(written > 0 for _, _, written in seen)


TWO_DATASETS_ONE_TYPO = """
[kinds.bundle]
[kinds.bundle.datasets.fine]
query = "SELECT 1 AS one WHERE :owner <> ''"
[kinds.bundle.datasets.typo]
query = "SELECT nope FROM nowhere WHERE owner = :owner"
"""


async def test_check_names_the_kind_and_dataset_of_a_query_that_does_not_prepare(
    rclone_server: S3Endpoint, dsn: str, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    env = deployment_env(tmp_path, dsn, rclone_server, bucket, TWO_DATASETS_ONE_TYPO)
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "ok    kind bundle, dataset fine: query prepares" in lines, lines
    assert any(
        line.startswith("FAIL  kind bundle, dataset typo:") and "nowhere" in line for line in lines
    ), lines


async def test_run_refuses_a_definition_whose_handler_does_not_import(
    dsn: str, tmp_path: Path
) -> None:
    (tmp_path / "kinds.toml").write_text('[kinds.gone]\nhandler = "tests.no_such_module:rows"\n')
    env = clean_env(
        EXPORTD_DATABASE_URL=dsn,
        EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"),
        EXPORTD_S3_BUCKET="any-bucket",
    )
    result = await exportd("run", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "kind 'gone'" in result.stderr
    assert "tests.no_such_module" in result.stderr


class _Refusing:
    async def write(self, data: bytes) -> None:
        raise ExportError(ErrorKind.TOO_LARGE, "no room")


async def _copy_into_a_refusing_sink(conn: asyncpg.Connection) -> None:
    guard = SinkGuard(conn)
    try:
        async with conn.transaction(readonly=True):
            await copy_csv(
                conn,
                "SELECT g FROM generate_series(1, 100) AS g",
                guard.wrap(_Refusing()),
                lambda rows: None,
            )
    except BaseException:
        guard.raise_failure()
        raise


async def test_a_copy_whose_sink_fails_ends_with_that_error_and_never_hangs(dsn: str) -> None:
    # A small COPY is often complete on the server by the time its sink
    # fails: a cancellation then has nothing to cancel, and used to leave
    # the ROLLBACK waiting forever.
    pool = await database.create_pool(dsn, min_size=1, max_size=1)
    try:
        for _ in range(20):
            async with asyncio.timeout(10), pool.acquire() as conn:
                with pytest.raises(ExportError, match="no room"):
                    await _copy_into_a_refusing_sink(conn)
        assert await pool.fetchval("SELECT 1") == 1, "the pool replaced the closed connection"
    finally:
        await pool.close()


async def test_enqueue_refuses_a_format_the_kind_cannot_fill(dsn: str, tmp_path: Path) -> None:
    (tmp_path / "kinds.toml").write_text(TWO_DATASETS_ONE_TYPO)
    env = clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"))
    result = await exportd(
        "enqueue", "bundle", "--owner", "o", "--format", "jsonl", env=env, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "2 datasets" in result.stderr
    assert "ask for format zip" in result.stderr
    assert await job_count(dsn) == 0
