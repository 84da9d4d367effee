"""A store that accepts the commit of an object and never answers.

A proxy in front of rclone or moto forwards everything but holds every
PutObject and CompleteMultipartUpload forever, while a real `exportd run`
process commits jobs through it. What must hold: the commit made under the
job's row lock ends within a third of the lease, the job is retried (and
fails once its attempts are spent) instead of staying in ``processing``, the
row is free for ``exportd.cancel()`` and ``DELETE /v1/jobs/{id}`` within
about that, and two SIGTERMs end the daemon within the shutdown bound.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from exportd.errors import ErrorKind, ExportError
from exportd.export.interface import JobContext, PreparedExport
from exportd.queue.job import ExportResult
from exportd.queue.postgres import PgJobStore
from exportd.worker.loop import Worker, WorkerConfig
from tests.support.daemon_process import daemon_env, log_events, status
from tests.support.fake_store import FakeStore, make_job
from tests.support.fixtures_s3 import S3Endpoint, free_port
from tests.support.helpers import eventually, insert_job, job_row
from tests.support.s3_proxy import FailingProxy, commits_an_object, failing_proxy

KINDS = """
[kinds.small]
query = "SELECT n FROM generate_series(1, 3) AS n WHERE :owner <> ''"

[kinds.big]
query = "SELECT g, repeat('x', 100000) AS pad FROM generate_series(1, 70) AS g WHERE :owner <> ''"
"""

LEASE = 3.0
GRACE = 2.0
TOKEN = "deadline-token"
# The commit's deadline (a third of the lease), the transaction's statements
# around it, and a loaded machine's slack.
PROMPT = LEASE / 3 + 2.0


async def test_a_store_that_never_answers_the_commit_leaves_nothing_stuck(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    port = free_port()
    async with failing_proxy(s3_endpoint.url) as proxy:
        proxy.hold = commits_an_object
        endpoint = S3Endpoint("hanging", proxy.url, s3_endpoint.access_key, s3_endpoint.secret_key)
        env = daemon_env(
            tmp_path,
            KINDS,
            dsn,
            endpoint,
            s3_bucket,
            port,
            lease_seconds=str(LEASE),
            reap_interval="0.3",
            backoff_base_seconds="0.3",
            backoff_max_seconds="1",
            shutdown_grace_seconds=str(GRACE),
            # Claims go on: every job meets the hanging store.
            storage_failure_threshold="1000",
            s3_part_size=str(5 * 1024 * 1024),
            s3_max_export_bytes=str(10_000 * 5 * 1024 * 1024),
            api_tokens=TOKEN,
        )
        log_path = tmp_path / "daemon.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "exportd", "run"],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            await _scenario(proc, proxy, port, pool)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    events = log_events(log_path)
    names = [e["event"] for e in events]
    # The worker itself let go of every job: none waited for the reaper.
    assert "job_reaped" not in names
    assert "shutdown_deadline_passed" not in names or names[-1] == "daemon_stopped"


async def _scenario(
    proc: subprocess.Popen[bytes], proxy: FailingProxy, port: int, pool: asyncpg.Pool
) -> None:
    def held() -> int:
        return proxy.held

    async def ready() -> bool:
        return (await status(port, "/readyz"))[0] == 200

    await eventually(ready, timeout=30)

    async def holding(before: int) -> bool:
        return bool(held() > before)

    # 1. A small object (PutObject) held under the row lock: exportd.cancel answers.
    before = held()
    a = await insert_job(pool, owner="a", kind="small")
    await eventually(lambda: holding(before), timeout=20)
    began = time.monotonic()
    assert await asyncpg_cancel(pool, a) is True
    assert time.monotonic() - began < PROMPT
    assert (await job_row(pool, a))["state"] == "cancelled"

    # 2. A multipart object (CompleteMultipartUpload) held: DELETE answers.
    before = held()
    b = await insert_job(pool, owner="b", kind="big")
    await eventually(lambda: holding(before), timeout=30)
    began = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.delete(
            f"http://127.0.0.1:{port}/v1/jobs/{b}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response,
    ):
        assert response.status == 200, await response.text()
    assert time.monotonic() - began < PROMPT
    assert (await job_row(pool, b))["state"] == "cancelled"

    # 3. Left alone: retried by the worker, then failed, never stuck.
    c = await insert_job(pool, owner="c", kind="small", max_attempts=2)

    async def finished() -> asyncpg.Record | None:
        row = await job_row(pool, c)
        return row if row["state"] == "failed" else None

    row = await eventually(finished, timeout=30)
    assert row["error_kind"] == "storage_unavailable"
    assert row["attempts"] == 2
    assert "S3 did not answer PutObject" in row["error"]
    assert "will retry" not in row["error"]
    assert row["error"].endswith("gave up after 2 of 2 attempts")

    # 4. Two SIGTERMs while a commit hangs: the daemon ends within the bound.
    before = held()
    d = await insert_job(pool, owner="d", kind="small")
    await eventually(lambda: holding(before), timeout=20)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, 60)
    took = time.monotonic() - began
    # The second signal's bound (5 s), and as long again for pools and the API.
    assert took < 12, took
    assert code == 0
    assert (await job_row(pool, d))["state"] != "processing"
    stuck = await pool.fetchval("SELECT count(*) FROM exportd.jobs WHERE state = 'processing'")
    assert stuck == 0


async def asyncpg_cancel(pool: asyncpg.Pool, job_id: uuid.UUID) -> bool:
    return bool(await pool.fetchval("SELECT exportd.cancel($1)", job_id, timeout=30))


async def test_a_commit_under_the_row_lock_ends_within_a_third_of_the_lease(
    pool: asyncpg.Pool,
) -> None:
    # The store's own backstop, whatever the runner's commit does: one that
    # never returns is abandoned, the lease renewed, and the lock let go.
    job_id = await insert_job(pool)
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)
    started = asyncio.Event()

    async def never() -> ExportResult:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    completing = asyncio.create_task(store.complete(job, "w1", 60, LEASE, never))
    await started.wait()
    began = time.monotonic()
    # A cancel meanwhile waits for the lock, and no longer than the deadline.
    cancelled = await pool.fetchval("SELECT exportd.cancel($1)", job_id, timeout=30)
    waited = time.monotonic() - began
    assert cancelled is True
    assert LEASE / 3 - 0.2 < waited < LEASE / 3 + 1.0
    with pytest.raises(ExportError) as caught:
        await completing
    assert caught.value.kind is ErrorKind.STORAGE_UNAVAILABLE
    assert f"within {LEASE / 3:g} s" in caught.value.message
    assert (await job_row(pool, job_id))["state"] == "cancelled"


class _Instant:
    async def run(self, ctx: JobContext) -> PreparedExport:
        return _Made()


class _Made:
    async def commit(self) -> ExportResult:
        return ExportResult("key", 1, 1, "0" * 64)

    async def abort(self) -> None:
        pass


async def test_a_second_signal_stops_a_job_stuck_recording_its_completion() -> None:
    job = make_job()
    store = FakeStore(ready=[job])
    store.recorded = asyncio.Event()  # the completing transaction never ends
    worker = Worker(store, _Instant(), WorkerConfig(concurrency=1, poll_interval=0.01))
    run = asyncio.create_task(worker.run(grace_seconds=600))
    await eventually(lambda: _true(bool(worker.running_jobs)))
    await asyncio.sleep(0.05)
    worker.request_stop()
    await asyncio.sleep(0.1)
    assert not run.done(), "the first signal waits for the grace period"
    worker.hurry()
    await asyncio.wait_for(run, 2)
    assert ("release", job.id) in store.calls


async def _true(value: bool) -> bool:
    return value
