"""What the dashboard's pages show, read from the queue as the API reads it."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import aiohttp
import asyncpg

from exportd.api.context import ApiContext
from exportd.queue.workers import WorkerIdentity
from exportd.s3.client import S3Client
from tests.support.helpers import insert_job
from tests.support.ui_client import ADMIN, ALICE_ADMIN, READER, browser_session, log_in


async def running(pool: asyncpg.Pool, owner: str, percent: int) -> uuid.UUID:
    job_id = await insert_job(pool, owner=owner, kind="everything")
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'processing', attempts = 1, worker_id = 'w-1',"
        " started_at = now() - interval '10 seconds', lease_expires_at = now() + interval '1 hour',"
        " progress = $2, rows_written = 4000, bytes_written = 2097152 WHERE id = $1",
        job_id,
        percent,
    )
    return job_id


async def failed(pool: asyncpg.Pool, owner: str, kind: str, error_kind: str) -> uuid.UUID:
    job_id = await insert_job(pool, owner=owner, kind="everything")
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'failed', attempts = 1, error = 'it broke: ' || $2,"
        " error_kind = $2, started_at = now() - interval '3 seconds', finished_at = now(),"
        " kind = $3 WHERE id = $1",
        job_id,
        error_kind,
        kind,
    )
    return job_id


async def test_the_overview_counts_the_queue_and_names_the_daemons(
    ui: str, ui_ctx: ApiContext, pool: asyncpg.Pool
) -> None:
    await ui_ctx.queue.announce_worker(
        WorkerIdentity("host-a:42:abcd", "9.9.9", "host-a", 42, datetime.now(UTC), 4, 10.0)
    )
    for _ in range(3):
        await insert_job(pool, owner="u1", kind="orders", params={"since": "2025-01-01"})
    await running(pool, "u1", 40)
    await failed(pool, "u2", "everything", "query_error")
    await ui_ctx.queue.pause_kind("orders", paused_by="test", reason="migrating")
    async with browser_session() as session:
        await log_in(session, ui, ADMIN)
        async with session.get(f"{ui}/ui/") as got:
            page = await got.text()
    assert re.search(r'id="count-pending">3<', page)
    assert re.search(r'id="count-processing">1<', page)
    assert 'id="breaker">unknown<' in page, "no breaker outside a daemon"
    assert "host-a:42:abcd" in page
    assert "9.9.9" in page
    assert "migrating" in page
    assert 'href="/ui/kinds/orders/resume"' in page
    assert 'href="/ui/kinds/bundle/pause"' in page
    assert "failed (1) below" in page, "the chart counts the failure of this minute"
    assert "<svg" in page
    assert "40%" in page


async def test_the_jobs_list_filters_and_pages_by_keyset(ui: str, pool: asyncpg.Pool) -> None:
    ids = [await failed(pool, f"owner-{n}", "everything", "query_error") for n in range(5)]
    other = await failed(pool, "owner-x", "everything", "too_large")
    async with browser_session() as session:
        await log_in(session, ui, READER)
        seen: list[str] = []
        query = "?error_kind=query_error&state=failed&limit=2"
        for _ in range(4):
            async with session.get(f"{ui}/ui/jobs{query}") as got:
                page = await got.text()
            seen += re.findall(r'<tr>\s*<td><a class="mono" href="/ui/jobs/([0-9a-f-]+)"', page)
            found = re.search(r'href="/ui/jobs(\?[^"]+)" rel="next"', page)
            if found is None:
                break
            query = found.group(1).replace("&amp;", "&")
        assert seen == [str(i) for i in reversed(ids)]
        assert str(other) not in seen
        async with session.get(f"{ui}/ui/jobs?owner=owner-x") as got:
            page = await got.text()
        assert str(other) in page
        assert str(ids[0]) not in page


async def test_a_jobs_page_shows_its_attempts_object_and_a_download_made_on_click(
    ui: str, pool: asyncpg.Pool, s3_client: S3Client, s3_bucket: str
) -> None:
    job_id = await insert_job(pool, owner="u1", kind="everything")
    await s3_client.put_object(Bucket=s3_bucket, Key="exports/u1/file.csv", Body=b"id\n1\n")
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'processing', attempts = 1, worker_id = 'w-9',"
        " started_at = now(), lease_expires_at = now() + interval '1 minute' WHERE id = $1",
        job_id,
    )
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'completed', finished_at = now(), lease_expires_at = NULL,"
        " object_key = 'exports/u1/file.csv', size_bytes = 5, row_count = 1,"
        " checksum_sha256 = repeat('ab', 32), expires_at = now() + interval '1 day',"
        " progress = 100 WHERE id = $1",
        job_id,
    )
    async with browser_session() as session:
        csrf = await log_in(session, ui, READER)
        async with session.get(f"{ui}/ui/jobs/{job_id}") as got:
            page = await got.text()
        assert "ab" * 32 in page
        assert "exports/u1/file.csv" in page
        assert "w-9" in page, "the attempt names its worker"
        assert "X-Amz-Signature" not in page, "no link is made before it is asked for"
        async with session.post(f"{ui}/ui/jobs/{job_id}/download", data={"csrf": csrf}) as got:
            assert got.status == 200
            link = re.search(r'id="download-link" href="([^"]+)"', await got.text())
        assert link is not None
        url = link.group(1).replace("&amp;", "&")
        assert "X-Amz-Signature" in url
    async with aiohttp.ClientSession() as plain, plain.get(url) as fetched:
        assert fetched.status == 200
        assert await fetched.read() == b"id\n1\n"


async def test_the_schedules_page_shows_each_last_job_and_its_outcome(
    ui: str, pool: asyncpg.Pool
) -> None:
    last = await failed(pool, "u1", "everything", "query_error")
    purged = uuid.uuid4()
    for job in (last, purged, None):
        await pool.execute(
            "INSERT INTO exportd.schedules (owner, kind, cron, next_run_at, last_job_id)"
            " VALUES ('u1', 'everything', '0 6 * * *', $1, $2)",
            datetime(2030, 1, 1, 6, tzinfo=UTC),
            job,
        )
    async with browser_session() as session:
        await log_in(session, ui, READER)
        async with session.get(f"{ui}/ui/schedules") as got:
            page = await got.text()
    assert page.count("2030-01-01 06:00:00Z") == 3
    assert f'href="/ui/jobs/{last}"' in page
    assert "query_error" in page
    assert "purged" in page


async def test_live_progress_is_every_running_job_in_one_answer(
    ui: str, pool: asyncpg.Pool
) -> None:
    alices = await running(pool, "alice", 25)
    bobs = await running(pool, "bob", 50)
    async with browser_session() as session:
        await log_in(session, ui, ADMIN)
        async with session.get(f"{ui}/ui/live") as got:
            doc = await got.json()
        assert set(doc["running"]) == {str(alices), str(bobs)}
        progress = doc["running"][str(bobs)]
        assert progress["percent"] == 50
        assert progress["rows_text"] == "4,000"
        assert progress["bytes_text"] == "2.0 MiB"
        assert "rows/s" in progress["rate_text"]
    async with browser_session() as session:
        await log_in(session, ui, ALICE_ADMIN)
        async with session.get(f"{ui}/ui/live") as got:
            assert set((await got.json())["running"]) == {str(alices)}
