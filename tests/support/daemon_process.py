"""`exportd run` as a real process, and what tests ask of it over HTTP and in its log."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.fixtures_s3 import S3Endpoint
from tests.support.helpers import clean_env


def daemon_env(
    tmp_path: Path,
    kinds: str,
    dsn: str,
    endpoint: S3Endpoint,
    bucket: str,
    port: int,
    **settings: str,
) -> dict[str, str]:
    """The environment of a daemon on ``dsn`` and ``bucket``, serving on ``port``,
    with the definitions ``kinds``, JSON logs, and more ``EXPORTD_*`` settings."""
    (tmp_path / "kinds.toml").write_text(kinds)
    return clean_env(
        EXPORTD_DATABASE_URL=dsn,
        EXPORTD_DEFINITIONS=str(tmp_path / "kinds.toml"),
        EXPORTD_S3_BUCKET=bucket,
        EXPORTD_S3_ENDPOINT_URL=endpoint.url,
        EXPORTD_S3_ACCESS_KEY_ID=endpoint.access_key,
        EXPORTD_S3_SECRET_ACCESS_KEY=endpoint.secret_key,
        EXPORTD_API_PORT=str(port),
        EXPORTD_POLL_INTERVAL="0.2",
        EXPORTD_LOG_FORMAT="json",
        **{f"EXPORTD_{name.upper()}": value for name, value in settings.items()},
    )


@contextlib.contextmanager
def daemon_process(env: dict[str, str], cwd: Path) -> Iterator[Path]:
    """`exportd run` in its own process; yields its log file."""
    log_path = cwd / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exportd", "run"],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def status(port: int, path: str) -> tuple[int, Any]:
    """The answer's status and JSON body; (0, None) when nothing answers."""
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=5)) as r,
        ):
            return r.status, await r.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError):
        return 0, None


def log_events(log_path: Path) -> list[dict[str, Any]]:
    events = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events
