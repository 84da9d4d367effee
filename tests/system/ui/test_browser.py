"""The dashboard in a real browser (headless Chromium) over a running daemon:
what an operator sees and does, with the page's own JavaScript running."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web
from playwright.async_api import Browser, Page

from exportd.s3.client import S3Client
from exportd.s3.objects import list_open_uploads
from tests.support.browser import log_in, policy_violations
from tests.support.daemon_harness import running_daemon
from tests.support.helpers import eventually, insert_job, job_row, wait_for_state
from tests.support.ui_client import ADMIN, READER

KINDS = """
[kinds.slow]
description = "Big rows, slowly: about 20 a second"
query = '''
SELECT g AS n, repeat('x', 100000) AS pad, pg_sleep(0.05)::text AS nap
FROM generate_series(1, 1000) AS g
WHERE :owner <> ''
'''

[kinds.flaky]
description = "Reads a table a test creates after the first attempt"
query = "SELECT n FROM ui_flaky WHERE :owner <> ''"

[kinds.quick]
query = "SELECT 1 AS n WHERE :owner <> ''"

[kinds.other]
query = "SELECT 2 AS n WHERE :owner <> ''"
"""


ACTIONS = re.compile(r"^(Cancel|Retry|Delete|Pause|Resume)")


def base_of(daemon: Any) -> str:
    return f"http://127.0.0.1:{daemon.api_port}"


async def percent(page: Page) -> int:
    value = await page.eval_on_selector("tr[data-live-job] progress", "el => el.value")
    return int(value)


async def reload_until(page: Page, selector: str, text: str) -> None:
    """Reload the page until ``selector`` shows ``text`` (a job that is not
    running is not followed live: its page says so when reloaded)."""

    async def shows() -> bool:
        await page.reload()
        return text in (await page.inner_text(selector))

    await eventually(shows, timeout=30, interval=0.3)


async def test_a_running_exports_progress_moves_live_and_cancel_aborts_its_upload(
    daemon_settings: Any, browser: Browser, pool: asyncpg.Pool, s3_client: S3Client, s3_bucket: str
) -> None:
    async with running_daemon(daemon_settings, KINDS) as daemon:
        base = base_of(daemon)
        job_id = await insert_job(pool, owner="alice", kind="slow")

        async def upload_open() -> Any:
            return (await job_row(pool, job_id))["upload_id"]

        await eventually(upload_open)
        page = await browser.new_page()
        violations = policy_violations(page)
        await log_in(page, base, ADMIN)
        await page.goto(f"{base}/ui/jobs?state=processing")
        row = page.locator(f'tr[data-live-job="{job_id}"]')
        assert await row.count() == 1
        first = await percent(page)
        # Marks this page load: a reload would lose it.
        await page.evaluate("window.sameLoad = true")

        async def moved() -> bool:
            # Read in the page as it is (the policy forbids the page's own eval,
            # so no wait_for_function: the test polls from outside).
            return await percent(page) > first

        await eventually(moved, timeout=30, interval=0.2)
        assert await page.evaluate("window.sameLoad === true"), "the page was reloaded"
        assert "rows/s" in await row.locator('[data-field="rate_text"]').inner_text()

        await page.click(f'a[href="/ui/jobs/{job_id}"]')
        await page.click("text=Cancel…")
        assert "Cancel this job?" in await page.inner_text("h1")
        await page.click("#confirm")
        await page.wait_for_url(f"{base}/ui/jobs/{job_id}")
        assert await page.inner_text("h1 .state") == "cancelled"
        await page.goto(f"{base}/ui/")
        assert violations == []

        async def stopped() -> bool:
            return not daemon.worker.running_jobs

        await eventually(stopped)
    assert (await job_row(pool, job_id))["state"] == "cancelled"
    assert await list_open_uploads(s3_client, s3_bucket, "") == []


async def test_a_failed_job_retried_from_its_page_completes(
    daemon_settings: Any, browser: Browser, pool: asyncpg.Pool
) -> None:
    async with running_daemon(daemon_settings, KINDS) as daemon:
        base = base_of(daemon)
        job_id = await insert_job(pool, owner="bob", kind="flaky")
        failed = await wait_for_state(pool, job_id, {"failed"})
        assert failed["error_kind"] == "query_error"
        page = await browser.new_page()
        await log_in(page, base, ADMIN)
        await page.goto(f"{base}/ui/jobs?state=failed")
        await page.click(f'a[href="/ui/jobs/{job_id}"]')
        assert "ui_flaky" in await page.inner_text(".problem")
        await pool.execute("CREATE TABLE ui_flaky AS SELECT 7 AS n")
        await page.click("text=Retry…")
        await page.click("#confirm")
        await page.wait_for_url(f"{base}/ui/jobs/{job_id}")
        await reload_until(page, "h1 .state", "completed")
        attempts = await page.inner_text("table >> nth=0")
        assert "query_error" in attempts, "the failed attempt stays listed"
    assert (await job_row(pool, job_id))["state"] == "completed"


async def test_a_paused_kind_holds_new_jobs_until_resumed(
    daemon_settings: Any, browser: Browser, pool: asyncpg.Pool
) -> None:
    async with running_daemon(daemon_settings, KINDS) as daemon:
        base = base_of(daemon)
        page = await browser.new_page()
        await log_in(page, base, ADMIN)
        await page.goto(f"{base}/ui/")
        await page.click('a[href="/ui/kinds/quick/pause"]')
        await page.fill("#reason", "bucket migration")
        await page.click("#confirm")
        await page.wait_for_url(f"{base}/ui/")
        assert "bucket migration" in await page.inner_text("table.kinds")

        held = await insert_job(pool, owner="carol", kind="quick")
        # A job of another kind, enqueued after it, runs: the daemon was
        # claiming all along, and passed the paused kind's job over.
        passer = await insert_job(pool, owner="carol", kind="other")
        await wait_for_state(pool, passer, {"completed"})
        assert (await job_row(pool, held))["state"] == "pending"
        await page.reload()
        assert "paused" in await page.inner_text("table.kinds")

        await page.click('a[href="/ui/kinds/quick/resume"]')
        await page.click("#confirm")
        await page.wait_for_url(f"{base}/ui/")
        await wait_for_state(pool, held, {"completed"})


async def test_a_read_only_session_finds_no_action(
    daemon_settings: Any, browser: Browser, pool: asyncpg.Pool
) -> None:
    async with running_daemon(daemon_settings, KINDS) as daemon:
        base = base_of(daemon)
        failed = await insert_job(pool, owner="dave", kind="flaky")
        await wait_for_state(pool, failed, {"failed"})
        waiting = await insert_job(pool, owner="dave", kind="quick", run_after_offset=3600)
        page = await browser.new_page()
        await log_in(page, base, READER)
        for path in ("/ui/", "/ui/jobs", f"/ui/jobs/{failed}", f"/ui/jobs/{waiting}"):
            await page.goto(f"{base}{path}")
            for role in ("link", "button"):
                found = page.get_by_role(role, name=ACTIONS)
                assert await found.count() == 0, (path, await found.all_inner_texts())
            assert await page.locator("form[method=post]:not([action='/ui/logout'])").count() == 0
        assert "read" in await page.inner_text(".role")


@contextlib.asynccontextmanager
async def attacker_site(target: str) -> AsyncIterator[str]:
    """Another origin (same host, another port) serving a form that posts to ``target``."""
    page = f"""<!doctype html><html><body>
<form id="forged" method="post" action="{target}"><input name="csrf" value="guessed"></form>
<script>document.getElementById("forged").submit();</script></body></html>"""

    async def serve(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def test_a_forged_form_from_another_origin_fails_the_csrf_check(
    daemon_settings: Any, browser: Browser, pool: asyncpg.Pool
) -> None:
    async with running_daemon(daemon_settings, KINDS) as daemon:
        base = base_of(daemon)
        job_id = await insert_job(pool, owner="erin", kind="quick", run_after_offset=3600)
        page = await browser.new_page()
        await log_in(page, base, ADMIN)
        async with attacker_site(f"{base}/ui/jobs/{job_id}/cancel") as evil:
            async with page.expect_navigation(url=f"{base}/ui/jobs/{job_id}/cancel"):
                await page.goto(evil)
            # The session's cookie went along (same site, another origin): the
            # CSRF check, not a missing session, is what refused the form.
            assert "CSRF check failed" in await page.inner_text("main")
    assert (await job_row(pool, job_id))["state"] == "pending"


async def test_without_javascript_the_pages_read_and_the_actions_work(
    daemon_settings: Any, browser: Browser, pool: asyncpg.Pool
) -> None:
    async with running_daemon(daemon_settings, KINDS) as daemon:
        base = base_of(daemon)
        running = await insert_job(pool, owner="frank", kind="slow")
        await wait_for_state(pool, running, {"processing"})
        waiting = await insert_job(pool, owner="frank", kind="quick", run_after_offset=3600)
        context = await browser.new_context(java_script_enabled=False)
        page = await context.new_page()
        await log_in(page, base, ADMIN)
        await page.goto(f"{base}/ui/jobs?owner=frank")
        # The server drew the progress: a bar, its percent and the rows so far.
        row = page.locator(f'tr[data-live-job="{running}"]')
        assert await row.locator("progress").count() == 1
        assert "%" in await row.locator('[data-field="percent_text"]').inner_text()
        await page.goto(f"{base}/ui/jobs/{waiting}")
        await page.click("text=Cancel…")
        await page.click("#confirm")
        await page.wait_for_url(f"{base}/ui/jobs/{waiting}")
        assert await page.inner_text("h1 .state") == "cancelled"
        await context.close()
    assert (await job_row(pool, waiting))["state"] == "cancelled"
