"""Real S3 servers for tests: ``rclone serve s3`` (disk-backed) and moto.

Each server starts once per session, on a free loopback port, the first time a
test asks for it. ``s3_endpoint`` runs a test against both; ``s3_bucket`` gives
each test its own bucket, so tests share servers but not state.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config

from exportd.s3.client import S3Client, open_s3_client
from exportd.settings.model import Settings

ACCESS_KEY = "exportdkey"
SECRET_KEY = "exportdsecret"
_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class S3Endpoint:
    name: str
    url: str
    access_key: str
    secret_key: str


def find_binary(name: str) -> str:
    """``name`` from this interpreter's environment, else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP status means the server is up
    except OSError:
        return False


@contextlib.contextmanager
def run_server(name: str, argv: list[str], url: str, log_path: Path) -> Iterator[None]:
    """Run ``argv`` until the block ends, once ``url`` answers HTTP."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with status {process.returncode}"
                    if process.returncode is not None
                    else f"did not answer at {url} within {_START_TIMEOUT:.0f} s"
                )
                output = log_path.read_text(errors="replace")[-4000:]
                raise RuntimeError(f"{name} {state}; command {argv}; output:\n{output}")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def rclone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    root = tmp_path_factory.mktemp("rclone")
    data = root / "data"
    data.mkdir()
    # An empty config file keeps the developer's own rclone remotes out of it.
    config = root / "rclone.conf"
    config.touch()
    port = free_port()
    argv = [
        find_binary("rclone"),
        "serve",
        "s3",
        "--config",
        str(config),
        "--addr",
        f"127.0.0.1:{port}",
        "--auth-key",
        f"{ACCESS_KEY},{SECRET_KEY}",
        str(data),
    ]
    url = f"http://127.0.0.1:{port}"
    with run_server("rclone serve s3", argv, url, root / "server.log"):
        yield S3Endpoint("rclone", url, ACCESS_KEY, SECRET_KEY)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    root = tmp_path_factory.mktemp("moto")
    port = free_port()
    argv = [find_binary("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with run_server("moto_server", argv, url, root / "server.log"):
        yield S3Endpoint("moto", url, ACCESS_KEY, SECRET_KEY)


@pytest.fixture(params=["rclone", "moto"], ids=["rclone", "moto"])
def s3_endpoint(request: pytest.FixtureRequest) -> S3Endpoint:
    endpoint: S3Endpoint = request.getfixturevalue(f"{request.param}_server")
    return endpoint


def botocore_config() -> Config:
    """What both servers need: SigV4, path-style, checksums only when required."""
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def create_bucket(endpoint: S3Endpoint) -> str:
    """A new, empty, uniquely named bucket on ``endpoint``."""
    name = f"exportd-test-{uuid.uuid4().hex[:20]}"
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint.url,
        region_name="us-east-1",
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        config=botocore_config(),
    )
    try:
        client.create_bucket(Bucket=name)
    finally:
        client.close()
    return name


@pytest.fixture
def s3_bucket(s3_endpoint: S3Endpoint) -> str:
    """A new, empty bucket on ``s3_endpoint``."""
    return create_bucket(s3_endpoint)


def s3_settings(endpoint: S3Endpoint, bucket: str, **overrides: Any) -> Settings:
    """Settings for ``endpoint``, ignoring any ``.env`` file.

    ``EXPORTD_*`` environment variables still apply to fields not given here,
    as they would for the daemon.
    """
    values: dict[str, Any] = {
        "database_url": "postgresql://localhost:5432/postgres",
        "s3_bucket": bucket,
        "s3_endpoint_url": endpoint.url,
        "s3_region": "us-east-1",
        "s3_access_key_id": endpoint.access_key,
        "s3_secret_access_key": endpoint.secret_key,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def s3_client(s3_endpoint: S3Endpoint, s3_bucket: str) -> AsyncIterator[S3Client]:
    async with contextlib.AsyncExitStack() as stack:
        yield await open_s3_client(s3_settings(s3_endpoint, s3_bucket), stack)


def s3_env(endpoint: S3Endpoint, bucket: str) -> dict[str, str]:
    """The environment of a command-line process reaching ``bucket`` on ``endpoint``."""
    return {
        "EXPORTD_S3_BUCKET": bucket,
        "EXPORTD_S3_ENDPOINT_URL": endpoint.url,
        "EXPORTD_S3_ACCESS_KEY_ID": endpoint.access_key,
        "EXPORTD_S3_SECRET_ACCESS_KEY": endpoint.secret_key,
    }
