"""A "my data" kind with a files dataset, end to end through each door: `POST /v1/jobs`
and `exportd enqueue` (a real process), each run to completion by a daemon whose zip
holds the stored objects; `GET /v1/kinds` offers such a kind only as a zip."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import asyncpg

from tests.integration.export.test_files import KINDS, read_zip, stored_files
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_api import AUTH, call
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, s3_settings
from tests.support.helpers import (
    deployment_env,
    download_job,
    exportd,
    job_row,
    wait_for_state,
)

FILES = [
    ("receipts/ann/1.pdf", "1/lunch.pdf", b"%PDF-1.4 lunch\n" * 40),
    ("receipts/ann/2.txt", "2/taxi.txt", b"taxi, 12.50\n" * 40),
]


async def test_a_files_kind_from_the_api_and_the_cli_completes_as_a_zip(
    rclone_server: S3Endpoint, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    bucket = create_bucket(rclone_server)
    source = create_bucket(rclone_server)
    await stored_files(pool, rclone_server, source, FILES)
    kinds = KINDS.format(policy="fail")
    env = deployment_env(tmp_path, dsn, rclone_server, bucket, kinds)
    settings = s3_settings(
        rclone_server, bucket, database_url=dsn, files_sources=[f"{source}/receipts/"], **FAST
    )
    async with running_daemon(settings, kinds) as daemon:
        api = f"http://127.0.0.1:{daemon.api_port}"
        status, body, _ = await call("GET", f"{api}/v1/kinds", AUTH)
        assert status == 200
        [kind] = [k for k in body["kinds"] if k["name"] == "my-data"]
        assert kind["formats"] == ["zip"]

        # Asked for no format, both doors choose zip; asked for another, the API refuses.
        status, body, _ = await call(
            "POST", f"{api}/v1/jobs", AUTH, json={"owner": "ann", "kind": "my-data"}
        )
        assert status == 202, body
        by_api = uuid.UUID(body["id"])
        status, refused, _ = await call(
            "POST",
            f"{api}/v1/jobs",
            AUTH,
            json={"owner": "ann", "kind": "my-data", "format": "csv"},
        )
        assert status == 400, refused
        result = await exportd("enqueue", "my-data", "--owner", "ann", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        by_cli = uuid.UUID(result.stdout.strip())

        for job_id in (by_api, by_cli):
            row = await wait_for_state(pool, job_id, {"completed", "failed"}, timeout=60)
            assert (row["state"], row["error_kind"]) == ("completed", None), row["error"]
            assert row["format"] == "zip"
            assert row["rows_written"] == 121  # 120 orders and one profile: files not counted
            body_bytes, _ = await download_job(daemon.api_port, job_id)
            bundle, manifest = read_zip(body_bytes)
            for key, path, content in FILES:
                assert bundle.read(f"files/receipts/{path}") == content
                [entry] = [m for m in manifest["members"] if m.get("source", {}).get("key") == key]
                assert entry["sha256"] == hashlib.sha256(content).hexdigest()
            assert manifest.get("file_problems", []) == []
    assert (await job_row(pool, by_api))["attempts"] == 1
