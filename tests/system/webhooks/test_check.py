"""`exportd check` and `exportd run` on webhook settings: a bad URL or a URL
without a secret is reported in one clear line, and no secret is ever printed."""

from __future__ import annotations

from pathlib import Path

from tests.support.fixtures_s3 import S3Endpoint, create_bucket
from tests.support.helpers import deployment_env, exportd
from tests.support.webhook_receiver import new_secret

KINDS = """
[kinds.numbers]
query = "SELECT g AS n FROM generate_series(1, 10) AS g WHERE :owner <> ''"
"""
OWN_URL = KINDS + 'webhook_url = "https://hooks.example:8443/in?token=kind-token"\n'


async def test_check_reports_where_events_go_without_secrets(
    rclone_server: S3Endpoint, dsn: str, tmp_path: Path
) -> None:
    secret = new_secret()
    env = deployment_env(tmp_path, dsn, rclone_server, create_bucket(rclone_server), OWN_URL)
    env["EXPORTD_WEBHOOK_URL"] = "https://app.example/hooks?token=default-token"
    env["EXPORTD_WEBHOOK_SECRET"] = f"{secret} {new_secret()}"
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if "webhooks" in line]
    assert line.startswith("ok    webhooks: default target https://app.example;")
    assert "numbers -> https://hooks.example:8443" in line
    assert "2 secret(s)" in line
    for hidden in (secret, secret.removeprefix("whsec_"), "default-token", "kind-token"):
        assert hidden not in result.stdout + result.stderr


async def test_check_fails_a_kind_url_without_a_secret(
    rclone_server: S3Endpoint, dsn: str, tmp_path: Path
) -> None:
    env = deployment_env(tmp_path, dsn, rclone_server, create_bucket(rclone_server), OWN_URL)
    result = await exportd("check", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert any(
        line.startswith("FAIL  webhooks:") and "EXPORTD_WEBHOOK_SECRET is not set" in line
        for line in result.stdout.splitlines()
    ), result.stdout


async def test_a_bad_url_or_secret_stops_every_command_in_one_line(
    rclone_server: S3Endpoint, dsn: str, tmp_path: Path
) -> None:
    env = deployment_env(tmp_path, dsn, rclone_server, create_bucket(rclone_server), KINDS)
    for extra, message in (
        ({"EXPORTD_WEBHOOK_URL": "ftp://x/y", "EXPORTD_WEBHOOK_SECRET": new_secret()}, "http"),
        ({"EXPORTD_WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "5 bytes"),
        ({"EXPORTD_WEBHOOK_URL": "https://app.example/h"}, "needs EXPORTD_WEBHOOK_SECRET"),
    ):
        for command in ("check", "run"):
            result = await exportd(command, env={**env, **extra}, cwd=tmp_path)
            assert result.returncode == 2, result.stdout + result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert message in lines[0]
            assert "c2hvcnQ" not in lines[0]
