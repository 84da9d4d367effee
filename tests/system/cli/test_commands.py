"""The command line, run as a real process, against real Postgres and S3."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from exportd.queue.sql import migrations
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_api import AUTH, call
from tests.support.fixtures_api import KINDS as API_KINDS
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port, s3_env, s3_settings
from tests.support.helpers import clean_env, deployment_env, exportd, job_count, job_row

KINDS = """
[kinds.numbers]
description = "Numbers up to a limit"
filename = "numbers-to-{upto}"
query = "SELECT g AS n, :owner AS owner FROM generate_series(1, :upto) AS g"
[kinds.numbers.params.upto]
type = "integer"
min = 1
max = 100000
required = true
"""

BROKEN_SQL = """
[kinds.typo]
query = "SELEC id FROM nowhere WHERE owner = :owner"
"""


async def test_migrate_creates_then_finds_the_schema_current(
    empty_database: str, tmp_path: Path
) -> None:
    env = clean_env(EXPORTD_DATABASE_URL=empty_database)
    first = await exportd("migrate", env=env, cwd=tmp_path)
    second = await exportd("migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"applied {m.version:04d}_{m.name}" for m in migrations()]
    assert first.stdout.startswith("applied 0001_jobs\n")
    assert second.stdout.strip() == "schema is up to date"
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('exportd.jobs') IS NOT NULL")
    finally:
        await conn.close()


async def test_run_refuses_an_unmigrated_database(
    empty_database: str, rclone_server: S3Endpoint, tmp_path: Path
) -> None:
    (tmp_path / "kinds.toml").write_text(KINDS)
    env = clean_env(
        EXPORTD_DATABASE_URL=empty_database,
        EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"),
        **s3_env(rclone_server, "any-bucket"),
    )
    result = await exportd("run", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "run `exportd migrate`" in result.stderr


async def test_check_passes_on_a_sound_deployment(
    rclone_server: S3Endpoint, dsn: str, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    env = deployment_env(tmp_path, dsn, rclone_server, bucket, KINDS)
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert "kind numbers: query prepares" in result.stdout
    # The test extra brings the parquet extra: check says it is there.
    assert "ok    formats: parquet available (exportd[parquet] installed)" in result.stdout


async def test_check_reports_every_problem(
    rclone_server: S3Endpoint, dsn: str, tmp_path: Path
) -> None:
    kinds = tmp_path / "kinds"
    kinds.mkdir()
    (kinds / "good.toml").write_text(KINDS)
    (kinds / "typo.toml").write_text(BROKEN_SQL)
    env = clean_env(
        EXPORTD_DATABASE_URL=dsn,
        EXPORTD_DEFINITIONS=str(kinds),
        **s3_env(rclone_server, "bucket-that-does-not-exist"),
    )
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("FAIL  kind typo:") and "syntax" in line for line in lines), lines
    assert any(line.startswith("ok    kind numbers") for line in lines), lines
    assert any(line.startswith("FAIL  bucket:") for line in lines), lines
    assert any(line.startswith("ok    database") for line in lines), lines


@pytest.mark.parametrize(
    ("env", "code", "message"),
    [
        ({"EXPORTD_S3_BUCKET": ""}, 2, "EXPORTD_S3_BUCKET"),
        ({"EXPORTD_DATABASE_URL": "mysql://nope"}, 2, "EXPORTD_DATABASE_URL: must be a postgresql"),
        ({"EXPORTD_CONCURRENCY": "lots"}, 2, "EXPORTD_CONCURRENCY"),
        ({"EXPORTD_S3_ENDPOINT_URL": "ftp://x"}, 2, "EXPORTD_S3_ENDPOINT_URL"),
        ({}, 1, "cannot reach the database at postgresql://u:***@127.0.0.1"),
    ],
    ids=["no-bucket", "bad-database-url", "bad-number", "bad-endpoint", "database-down"],
)
async def test_run_stops_with_one_clear_line(
    env: dict[str, str], code: int, message: str, tmp_path: Path
) -> None:
    (tmp_path / "kinds.toml").write_text(KINDS)
    base = clean_env(
        EXPORTD_S3_BUCKET="bucket",
        EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"),
        # Nothing listens there; the password must never be printed.
        EXPORTD_DATABASE_URL=f"postgresql://u:hunter2@127.0.0.1:{free_port()}/db",
        # No wait for the database to come up: fail at the first refusal.
        EXPORTD_STARTUP_WAIT_SECONDS="0",
    )
    result = await exportd("run", env={**base, **env}, cwd=tmp_path)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "hunter2" not in result.stderr


async def test_a_busy_api_port_is_one_clear_line(dsn: str, tmp_path: Path) -> None:
    (tmp_path / "kinds.toml").write_text(KINDS)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = clean_env(
            EXPORTD_DATABASE_URL=dsn,
            EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"),
            EXPORTD_S3_BUCKET="bucket",
            EXPORTD_API_PORT=str(busy.getsockname()[1]),
        )
        result = await exportd("run", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot serve the API on 127.0.0.1" in result.stderr
    assert "EXPORTD_API_PORT" in result.stderr
    assert "Traceback" not in result.stderr


async def test_invalid_definitions_stop_run_with_every_problem(tmp_path: Path) -> None:
    (tmp_path / "kinds.toml").write_text(
        '[kinds.a]\nquery = "SELECT :nope"\n[kinds.b]\nqueyr = "SELECT 1"\n'
    )
    env = clean_env(EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"), EXPORTD_S3_BUCKET="bucket")
    result = await exportd("run", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid export definitions" in result.stderr
    assert "kind 'a'" in result.stderr
    assert "kind 'b'" in result.stderr
    assert "Traceback" not in result.stderr


async def test_enqueue_checks_params_before_inserting(dsn: str, tmp_path: Path) -> None:
    (tmp_path / "kinds.toml").write_text(KINDS)
    env = clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"))
    result = await exportd(
        "enqueue",
        "numbers",
        "--owner",
        "o",
        "--param",
        "upto=0",
        "--param",
        "x=1",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "upto" in result.stderr
    assert "x" in result.stderr
    assert await job_count(dsn) == 0


BUNDLE = """
[kinds.bundle.datasets.one]
query = "SELECT 1 AS a WHERE :owner <> ''"
[kinds.bundle.datasets.two]
query = "SELECT 2 AS b WHERE :owner <> ''"
"""


async def test_enqueue_without_a_format_chooses_as_the_api_does(
    dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # A kind of several datasets only fits in a zip: asked for no format, the
    # CLI enqueues a zip, as POST /v1/jobs does, rather than refusing csv.
    (tmp_path / "kinds.toml").write_text(KINDS + BUNDLE)
    env = clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"))
    formats = {}
    for kind, params in (("bundle", []), ("numbers", ["--param", "upto=3"])):
        result = await exportd("enqueue", kind, "--owner", "o", *params, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        job_id = uuid.UUID(result.stdout.strip())
        formats[kind] = (await job_row(pool, job_id))["format"]
    assert formats == {"bundle": "zip", "numbers": "csv"}


async def test_enqueue_dedupes_as_post_v1_jobs_does(api: str, dsn: str, tmp_path: Path) -> None:
    # One path for both doors: a key live through one is live through the
    # other, and once its job has ended it makes a new job through either.
    (tmp_path / "kinds.toml").write_text(API_KINDS)
    env = clean_env(EXPORTD_DATABASE_URL=dsn, EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"))
    by_cli = ("enqueue", "everything", "--owner", "u1", "--dedupe-key", "button")
    by_api = {"owner": "u1", "kind": "everything", "dedupe_key": "button"}

    first = await exportd(*by_cli, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    cli_job = first.stdout.strip()
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, json=by_api)
    assert (status, body["error"], body["job"]["id"]) == (409, "duplicate", cli_job)
    again = await exportd(*by_cli, env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert "already has a live job with dedupe key 'button'" in again.stderr

    assert (await call("DELETE", f"{api}/v1/jobs/{cli_job}", AUTH))[0] == 200
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, json=by_api)
    assert status == 202
    api_job = body["id"]
    refused = await exportd(*by_cli, env=env, cwd=tmp_path)
    assert refused.returncode == 1
    assert "already has a live job with dedupe key 'button'" in refused.stderr

    assert (await call("DELETE", f"{api}/v1/jobs/{api_job}", AUTH))[0] == 200
    last = await exportd(*by_cli, env=env, cwd=tmp_path)
    assert last.returncode == 0, last.stderr
    assert last.stdout.strip() not in (cli_job, api_job)
    assert await job_count(dsn) == 3

    # A key the API refuses, the CLI refuses too, before inserting anything.
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, json={**by_api, "dedupe_key": ""})
    assert (status, body["error"]) == (400, "invalid_request")
    empty = await exportd(*by_cli[:-1], "", env=env, cwd=tmp_path)
    assert empty.returncode == 2
    assert "--dedupe-key must not be empty" in empty.stderr
    assert await job_count(dsn) == 3


async def test_a_command_against_an_unmigrated_database_is_one_clear_line(
    empty_database: str, tmp_path: Path
) -> None:
    env = clean_env(EXPORTD_DATABASE_URL=empty_database)
    for command in (["enqueue", "numbers", "--owner", "o"], ["status", str(uuid.uuid4())]):
        result = await exportd(*command, env=env, cwd=tmp_path)
        assert result.returncode == 2, command
        assert "Traceback" not in result.stderr
        [line] = result.stderr.strip().splitlines()
        assert "no exportd schema" in line, line
        assert "exportd migrate" in line, line


async def test_enqueue_wait_prints_a_working_download_url_and_status_shows_the_job(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    env = deployment_env(tmp_path, dsn, rclone_server, bucket, KINDS)
    settings = s3_settings(rclone_server, bucket, database_url=dsn, **FAST)
    async with running_daemon(settings, KINDS):
        result = await exportd(
            "enqueue",
            "numbers",
            "--owner",
            "ann",
            "--param",
            "upto=1000",
            "--wait",
            env=env,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    job_line, url = result.stdout.strip().splitlines()
    job_id = uuid.UUID(job_line)
    assert "completed: 1000 rows" in result.stderr
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.read()
    assert response.status == 200
    assert body.splitlines()[0] == b"n,owner"
    assert body.splitlines()[-1] == b"1000,ann"
    assert response.headers["Content-Disposition"] == 'attachment; filename="numbers-to-1000.csv"'

    status = await exportd("status", str(job_id), env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    row = await job_row(pool, job_id)
    assert doc["state"] == "completed"
    assert doc["checksum_sha256"] == row["checksum_sha256"]
    assert doc["download_url"].startswith(rclone_server.url)

    missing = await exportd("status", str(uuid.uuid4()), env=env, cwd=tmp_path)
    assert missing.returncode == 1
    assert "no job" in missing.stderr
