"""Maintenance tasks against real Postgres and real S3 servers.

Each task's ``run_once()`` is called directly, as the runner would; time is
controlled through the rows (``expires_at``, ``finished_at``), never by
waiting.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from botocore.exceptions import ClientError
from structlog.testing import capture_logs

from exportd.maintenance.purge import Purge
from exportd.maintenance.retention import Retention
from exportd.maintenance.runner import tick
from exportd.maintenance.uploads_sweep import UploadsSweep
from exportd.queue.postgres import PgJobStore
from exportd.s3.client import S3Client
from exportd.s3.objects import delete_object, list_open_uploads
from tests.support.helpers import insert_job, job_row

PREFIX = "exports"


async def completed_job(
    pool: asyncpg.Pool, *, owner: str = "u1", expires_in: float, key: str | None = None
) -> uuid.UUID:
    job_id = await insert_job(pool, owner=owner)
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'completed', finished_at = now(),"
        " expires_at = now() + make_interval(secs => $2), object_key = $3 WHERE id = $1",
        job_id,
        expires_in,
        key or f"{PREFIX}/{owner}/{job_id}/export.csv",
    )
    return job_id


async def put(s3: S3Client, bucket: str, key: str) -> None:
    await s3.put_object(Bucket=bucket, Key=key, Body=b"a,b\n1,2\n")


async def exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        await s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


# --- retention ---------------------------------------------------------------


async def test_retention_deletes_expired_objects_and_tells_the_application(
    dsn: str, pool: asyncpg.Pool, s3_client: S3Client, s3_bucket: str
) -> None:
    old = await completed_job(pool, owner="u1", expires_in=-60)
    fresh = await completed_job(pool, owner="u2", expires_in=3600)
    keys = {j: (await job_row(pool, j))["object_key"] for j in (old, fresh)}
    for key in keys.values():
        await put(s3_client, s3_bucket, key)

    listener = await asyncpg.connect(dsn)
    events: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("exportd_events", lambda *a: events.put_nowait(a[3]))

    async def delete(key: str) -> None:
        await delete_object(s3_client, s3_bucket, key)

    try:
        with capture_logs() as logs:
            assert await Retention(PgJobStore(pool), delete).run_once() == 1
        event = json.loads(await asyncio.wait_for(events.get(), 5))
    finally:
        await listener.close()

    assert event == {"id": str(old), "owner": "u1", "kind": "orders", "state": "expired"}
    assert (await job_row(pool, old))["state"] == "expired"
    assert (await job_row(pool, fresh))["state"] == "completed"
    assert not await exists(s3_client, s3_bucket, keys[old])
    assert await exists(s3_client, s3_bucket, keys[fresh])
    assert [e["job_id"] for e in logs if e["event"] == "job_expired"] == [str(old)]
    # Nothing left: the next round does nothing.
    assert await Retention(PgJobStore(pool), delete).run_once() == 0


async def test_retention_keeps_the_row_while_storage_fails(pool: asyncpg.Pool) -> None:
    first = await completed_job(pool, expires_in=-120)
    second = await completed_job(pool, expires_in=-60)
    attempted: list[str] = []

    async def failing(key: str) -> None:
        attempted.append(key)
        raise OSError("connection refused")

    with capture_logs() as logs:
        assert await Retention(PgJobStore(pool), failing).run_once() == 0
    assert len(attempted) == 1, "a failing store is not asked once per row"
    for job_id in (first, second):
        assert (await job_row(pool, job_id))["state"] == "completed"
    assert any(e["event"] == "retention_delete_failed" for e in logs)


async def test_retention_from_several_daemons_expires_each_job_once(pool: asyncpg.Pool) -> None:
    ids = {await completed_job(pool, expires_in=-10) for _ in range(30)}
    deleted: list[str] = []

    async def delete(key: str) -> None:
        deleted.append(key)
        await asyncio.sleep(0)

    tasks = [Retention(PgJobStore(pool), delete, batch_size=7) for _ in range(4)]
    counts = await asyncio.gather(*(tick(t) for t in tasks))
    # Rounds that found another daemon holding the lock did nothing; the
    # rest, together, expired every job exactly once.
    while sum(counts) < len(ids):
        counts.append(await tick(tasks[0]))
    assert sum(counts) == len(ids)
    assert len(deleted) == len(set(deleted)) == len(ids)
    states = await pool.fetch("SELECT DISTINCT state FROM exportd.jobs")
    assert [r["state"] for r in states] == ["expired"]


# --- purge ---------------------------------------------------------------------


async def test_purge_deletes_old_terminal_rows_only(pool: asyncpg.Pool) -> None:
    rows: dict[str, uuid.UUID] = {}
    for state, age_hours in [
        ("failed", 48),
        ("cancelled", 48),
        ("expired", 48),
        ("completed", 48),
        ("failed", 0),
        ("pending", 48),
    ]:
        job_id = await insert_job(pool)
        await pool.execute(
            "UPDATE exportd.jobs SET state = $2,"
            " finished_at = CASE WHEN $2 <> 'pending' THEN now() - make_interval(hours => $3) END,"
            " created_at = now() - make_interval(hours => $3) WHERE id = $1",
            job_id,
            state,
            age_hours,
        )
        rows[f"{state}-{age_hours}"] = job_id

    purge = Purge(PgJobStore(pool), history_seconds=24 * 3600, batch_size=2)
    with capture_logs() as logs:
        assert await tick(purge) == 3
    left = {r["id"] for r in await pool.fetch("SELECT id FROM exportd.jobs")}
    assert left == {rows["completed-48"], rows["failed-0"], rows["pending-48"]}
    assert sum(e["count"] for e in logs if e["event"] == "jobs_purged") == 3


# --- orphaned uploads -------------------------------------------------------------


async def start_upload(s3: S3Client, bucket: str, key: str) -> str:
    created: dict[str, Any] = await s3.create_multipart_upload(Bucket=bucket, Key=key)
    return str(created["UploadId"])


async def test_sweep_aborts_orphaned_uploads_and_never_a_live_jobs(
    pool: asyncpg.Pool, s3_client: S3Client, s3_bucket: str
) -> None:
    live = await insert_job(pool, owner="o")
    cancelled = await insert_job(pool, owner="o")
    starting = await insert_job(pool, owner="o")
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'processing', worker_id = 'w', attempts = 1,"
        " lease_expires_at = now() + interval '1 minute' WHERE id = ANY($1::uuid[])",
        [live, starting],
    )
    keys = {
        "live": f"{PREFIX}/o/{live}/export.csv",
        "cancelled": f"{PREFIX}/o/{cancelled}/export.csv",
        "starting": f"{PREFIX}/o/{starting}/export.csv",
        "stray": f"{PREFIX}/o/{uuid.uuid4()}/export.csv",
        "outside": f"other/o/{uuid.uuid4()}/export.csv",
    }
    ids = {name: await start_upload(s3_client, s3_bucket, key) for name, key in keys.items()}
    await pool.execute(
        "UPDATE exportd.jobs SET upload_id = $2, upload_key = $3 WHERE id = $1",
        live,
        ids["live"],
        keys["live"],
    )
    # Cancelled while its worker was gone: the row still names its upload.
    await pool.execute(
        "UPDATE exportd.jobs SET upload_id = $2, upload_key = $3 WHERE id = $1",
        cancelled,
        ids["cancelled"],
        keys["cancelled"],
    )
    await pool.fetchval("SELECT exportd.cancel($1)", cancelled)

    cautious = UploadsSweep(PgJobStore(pool), s3_client, s3_bucket, PREFIX, timedelta(hours=1))
    assert await cautious.run_once() == 0, "young uploads are left alone"

    sweep = UploadsSweep(PgJobStore(pool), s3_client, s3_bucket, PREFIX, timedelta(0))
    with capture_logs() as logs:
        assert await sweep.run_once() == 2
    still_open = {u["UploadId"] for u in await list_open_uploads(s3_client, s3_bucket, "")}
    assert still_open == {ids["live"], ids["starting"], ids["outside"]}
    aborted = {e["upload_id"] for e in logs if e["event"] == "orphan_upload_aborted"}
    assert aborted == {ids["cancelled"], ids["stray"]}
    assert await sweep.run_once() == 0


# --- the runner -------------------------------------------------------------------
