"""Hostile or broken requests to the dashboard: each answered plainly, as a page
with the security headers, and never sending the browser off the dashboard."""

from __future__ import annotations

from urllib.parse import parse_qs, urljoin, urlsplit

import asyncpg
import pytest
from structlog.testing import capture_logs

from exportd.api.context import ApiContext
from exportd.queue.overview import Overview
from exportd.queue.postgres import PgJobStore
from exportd.ui.auth import HEADERS
from exportd.ui.sessions import COOKIE_NAME
from tests.support.fixtures_api import serving
from tests.support.helpers import insert_job
from tests.support.ui_client import ADMIN, ALICE_ADMIN, browser_session, log_in

# Each passes a naive "starts with /ui/" check, and a browser resolving the
# Location it gave would leave the dashboard's paths (or, for "//", its host
# once anything in front of the daemon merges slashes).
HOSTILE_NEXT = [
    "/ui/..//evil.example",
    "/ui/../v1/jobs",
    "/ui/%2e%2e//evil.example",
    "/ui/%2E%2E/%2E%2E/evil",
    "/ui/.%2e/v1/jobs",
    "/ui/\t/evil.example",
    "/ui/\n/evil.example",
    "/ui/\r\nSet-Cookie: x=1",
    "/ui/ //evil.example",
    "/ui/jobs/../../v1/workers",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
async def test_a_login_never_sends_the_browser_off_the_dashboard(ui: str, target: str) -> None:
    async with (
        browser_session() as session,
        session.post(
            f"{ui}/ui/login", data={"token": ADMIN, "next": target}, allow_redirects=False
        ) as got,
    ):
        assert got.status == 303
        location = got.headers["Location"]
        assert location == "/ui/", (target, location)
    # The form's hidden field, sent back by its login, is as safe.
    async with (
        browser_session() as session,
        session.get(f"{ui}/ui/login", params={"next": target}) as form,
    ):
        assert 'name="next" value="/ui/"' in await form.text(), target


@pytest.mark.parametrize(
    "target", ["/ui/jobs?state=failed&kind=orders", "/ui/jobs/0b9c3f2e-1d3a-4a6e-9a51-3f0e2a8b7c11"]
)
async def test_a_login_returns_to_the_page_asked_for(ui: str, target: str) -> None:
    async with (
        browser_session() as session,
        session.post(
            f"{ui}/ui/login", data={"token": ADMIN, "next": target}, allow_redirects=False
        ) as got,
    ):
        resolved = urlsplit(urljoin(f"{ui}/ui/login", got.headers["Location"]))
        path, _, query = target.partition("?")
        assert (resolved.path, resolved.query) == (path, query)


async def test_an_outage_is_a_page_with_the_headers(ui_ctx: ApiContext) -> None:
    """The queue's database refusing connections: the pages answer 503 as pages
    of the dashboard (headers, Retry-After), never the API's JSON."""
    # Nothing listens on port 1: every acquire is refused at once.
    down = await asyncpg.create_pool("postgresql://127.0.0.1:1/none", min_size=0)
    try:
        ui_ctx.queue = PgJobStore(down)
        async with serving(ui_ctx) as base, browser_session() as session:
            # The login itself needs no database.
            async with session.post(
                f"{base}/ui/login", data={"token": ADMIN}, allow_redirects=False
            ) as got:
                assert got.status == 303
            for path in ("/ui/", "/ui/jobs", "/ui/schedules", "/ui/live"):
                async with session.get(f"{base}{path}", allow_redirects=False) as got:
                    assert got.status == 503, path
                    assert got.headers["Retry-After"]
                    for name, value in HEADERS.items():
                        assert got.headers[name] == value, (path, name)
                    if path != "/ui/live":
                        assert got.content_type == "text/html", path
                        assert "does not answer" in await got.text()
    finally:
        await down.close()


PROBES = [
    "/ui/",
    "/ui/schedules",
    "/ui/jobs",
    "/ui/jobs?since=0001-01-01T00:00",
    "/ui/jobs?until=0001-01-01T00:00",
    "/ui/jobs?since=9999-12-31T23:59:59",
    "/ui/jobs?since=garbage",
    "/ui/jobs?since=2026-01-01T00:00%2B14:00",
    "/ui/jobs?cursor=%%%%",
    "/ui/jobs?cursor=" + "A" * 3000,
    "/ui/jobs?owner=" + "o" * 4000,
    "/ui/jobs?limit=-1",
    "/ui/jobs?limit=99999999999999999999999",
    "/ui/jobs?state=failed&state=pending",
    "/ui/jobs?" + "&".join(f"x{i}=1" for i in range(500)),
    "/ui/jobs/not-a-uuid",
    "/ui/jobs/00000000-0000-0000-0000-000000000000/cancel",
    "/ui/jobs/00000000-0000-0000-0000-000000000000/nope",
    "/ui/kinds/nope/pause",
    "/ui/schedules?cursor=zzz",
    "/ui/schedules?limit=0",
    "/ui/static/%2e%2e/auth.py",
    "/ui/static/..%2f..%2fauth.py",
    "/ui/static/",
    "/ui/static/nope.js",
    "/ui/nope",
]


@pytest.mark.parametrize("path", PROBES)
async def test_an_empty_queue_or_a_malformed_request_is_a_plain_page(ui: str, path: str) -> None:
    async with browser_session() as session:
        await log_in(session, ui, ADMIN)
        async with session.get(f"{ui}{path}", allow_redirects=False) as got:
            assert got.status in (200, 403, 404), path[:80]
            for name in HEADERS:
                assert name in got.headers, (path[:80], name)
            assert len(await got.read()) < 200_000


async def test_an_owner_scoped_session_reaches_no_other_owners_job_by_any_route(
    ui: str, pool: asyncpg.Pool
) -> None:
    """Every route that names or lists jobs: the live progress, the schedules, a
    download, each action's confirmation and its POST."""
    mine = await insert_job(pool, owner="alice", kind="orders", params={"since": "2025-01-01"})
    running = await insert_job(pool, owner="bob", kind="orders", params={"since": "2025-01-01"})
    failed = await insert_job(pool, owner="bob", kind="orders", params={"since": "2025-01-01"})
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'processing', attempts = 1, worker_id = 'w',"
        " started_at = now(), lease_expires_at = now() + interval '1 minute'"
        " WHERE id = ANY($1::uuid[])",
        [mine, running, failed],
    )
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'failed', error = 'x', error_kind = 'query_error',"
        " finished_at = now(), lease_expires_at = NULL WHERE id = $1",
        failed,
    )
    await pool.execute(
        "INSERT INTO exportd.schedules (owner, kind, cron) VALUES ('bob', 'bob-kind', '0 * * * *')"
    )
    async with browser_session() as session:
        csrf = await log_in(session, ui, ALICE_ADMIN)
        async with session.get(f"{ui}/ui/live") as got:
            assert set((await got.json())["running"]) == {str(mine)}
        async with session.get(f"{ui}/ui/schedules") as got:
            assert "bob-kind" not in await got.text()
        for verb in ("cancel", "retry", "delete"):
            for job in (running, failed):
                async with session.get(f"{ui}/ui/jobs/{job}/{verb}") as got:
                    assert got.status == 404, (verb, job)
                async with session.post(f"{ui}/ui/jobs/{job}/{verb}", data={"csrf": csrf}) as got:
                    assert got.status == 404, (verb, job)
        async with session.post(f"{ui}/ui/jobs/{failed}/download", data={"csrf": csrf}) as got:
            assert got.status == 404
        async with session.get(f"{ui}/ui/jobs?owner=bob&state=failed") as got:
            assert str(failed) not in await got.text()
    states = await pool.fetch(
        "SELECT id, state FROM exportd.jobs WHERE id = ANY($1::uuid[])", [running, failed]
    )
    assert {r["id"]: r["state"] for r in states} == {running: "processing", failed: "failed"}


async def test_a_daemon_row_shows_its_heartbeats_age_never_negative(
    ui: str, pool: asyncpg.Pool
) -> None:
    """A heartbeat committed after the overview's snapshot began, or stamped by
    a database clock stepped back since, is later than the overview's "now":
    its age is nought, as ``GET /v1/workers`` says, never a negative time. Its
    host and version, whatever they hold, are text."""
    await pool.execute(
        "INSERT INTO exportd.workers (id, version, host, pid, started_at, concurrency,"
        " heartbeat_seconds, last_heartbeat_at)"
        " VALUES ('w-ahead', $1, $1, 1, now(), 1, 10, now() + interval '5 seconds')",
        "<script>alert(3)</script>",
    )
    async with browser_session() as session:
        await log_in(session, ui, ADMIN)
        async with session.get(f"{ui}/ui/") as got:
            page = await got.text()
    row = page[page.index("w-ahead") :]
    row = row[: row.index("</tr>")]
    assert "(0 ms ago)" in row, row
    assert "<script>alert(3)" not in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in row


class _BrokenOverview(PgJobStore):
    """The queue with a bug in one read: what a handler's unexpected exception is."""

    async def overview(self, finished_window_seconds: float = 0.0) -> Overview:
        raise RuntimeError("a bug")


async def test_a_bug_is_a_500_page_with_the_headers_and_logged(
    ui_ctx: ApiContext, pool: asyncpg.Pool
) -> None:
    ui_ctx.queue = _BrokenOverview(pool)
    with capture_logs() as logs:
        async with serving(ui_ctx) as base, browser_session() as session:
            await log_in(session, base, ADMIN)
            async with session.get(f"{base}/ui/") as got:
                assert got.status == 500
                assert got.content_type == "text/html"
                assert "a bug" not in await got.text()
                for name, value in HEADERS.items():
                    assert got.headers[name] == value, name
    assert any(e["event"] == "ui_error" and e.get("path") == "/ui/" for e in logs), logs


async def test_a_login_posted_from_another_site_is_refused(ui: str) -> None:
    """Login CSRF: another site's page posting its own token to the form would
    log the victim's browser into that session. Browsers say where a request
    comes from (Sec-Fetch-Site); a cross-site login is refused, with no cookie."""
    async with browser_session() as session:
        async with session.post(
            f"{ui}/ui/login",
            data={"token": ADMIN},
            headers={"Sec-Fetch-Site": "cross-site"},
            allow_redirects=False,
        ) as got:
            assert got.status == 403
            assert COOKIE_NAME not in got.cookies
            assert "another site" in await got.text()
        for site in ("same-origin", "none"):
            async with session.post(
                f"{ui}/ui/login",
                data={"token": ADMIN},
                headers={"Sec-Fetch-Site": site},
                allow_redirects=False,
            ) as got:
                assert got.status == 303, site


async def test_a_filtered_page_survives_the_login_it_sent_the_browser_to(ui: str) -> None:
    """Filters with spaces, non-ASCII text or an encoded '&' come back intact."""
    asked = "/ui/jobs?owner=caf%C3%A9+au+lait&kind=a%26b"
    async with browser_session() as session:
        async with session.get(f"{ui}{asked}", allow_redirects=False) as got:
            assert got.status == 303
            login = urlsplit(urljoin(f"{ui}/ui/", got.headers["Location"]))
        (target,) = parse_qs(login.query)["next"]
        async with session.post(
            f"{ui}/ui/login", data={"token": ADMIN, "next": target}, allow_redirects=False
        ) as got:
            back = urlsplit(urljoin(f"{ui}/ui/login", got.headers["Location"]))
        assert back.path == "/ui/jobs"
        assert parse_qs(back.query) == {"owner": ["café au lait"], "kind": ["a&b"]}


async def test_the_redirect_to_the_dashboard_carries_the_headers(ui: str) -> None:
    async with browser_session() as session, session.get(f"{ui}/ui", allow_redirects=False) as got:
        assert (got.status, got.headers["Location"]) == (308, "/ui/")
        for name, value in HEADERS.items():
            assert got.headers[name] == value, name
