"""Who gets into the dashboard, and what the server refuses whatever a page shows:
login, session cookies, CSRF, read-only sessions, owner scope, headers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from structlog.testing import capture_logs

from exportd.api.context import ApiContext
from exportd.definitions.loader import definitions_from_text
from exportd.queue.postgres import PgJobStore
from exportd.s3.client import S3Client
from exportd.ui.sessions import COOKIE_NAME
from tests.support.fixtures_api import KINDS, serving
from tests.support.fixtures_s3 import S3Endpoint, s3_settings
from tests.support.helpers import insert_job, job_row
from tests.support.ui_client import (
    ADMIN,
    ALICE_ADMIN,
    READER,
    browser_session,
    csrf_of,
    log_in,
)


async def test_with_no_token_set_the_dashboard_is_closed(
    s3_endpoint: S3Endpoint, s3_bucket: str, dsn: str, pool: asyncpg.Pool, s3_client: S3Client
) -> None:
    settings = s3_settings(s3_endpoint, s3_bucket, database_url=dsn)
    ctx = ApiContext(PgJobStore(pool), s3_client, settings, definitions_from_text(KINDS))
    async with serving(ctx) as base, browser_session() as session:
        for method, path in [("GET", "/ui/"), ("GET", "/ui/jobs"), ("POST", "/ui/login")]:
            async with session.request(method, f"{base}{path}", data={"token": ADMIN}) as got:
                assert got.status == 404
                assert "EXPORTD_UI_ADMIN_TOKENS" in await got.text()
                assert COOKIE_NAME not in got.cookies


async def test_pages_need_a_session(ui: str) -> None:
    async with browser_session() as session:
        async with session.get(f"{ui}/ui/jobs?state=failed", allow_redirects=False) as got:
            assert got.status == 303
            target = urlsplit(got.headers["Location"])
            assert target.path == "/ui/login"
            assert parse_qs(target.query) == {"next": ["/ui/jobs?state=failed"]}
        async with session.get(f"{ui}/ui/live") as got:
            assert got.status == 401
        async with session.get(f"{ui}/ui", allow_redirects=False) as got:
            assert (got.status, got.headers["Location"]) == (308, "/ui/")
        # The static assets are open: the login page needs them.
        async with session.get(f"{ui}/ui/static/app.js") as got:
            assert got.status == 200


async def test_login_sets_a_strict_http_only_cookie(ui: str) -> None:
    async with browser_session() as session:
        async with session.post(
            f"{ui}/ui/login", data={"token": "wrong-token-0123456789"}, allow_redirects=False
        ) as got:
            assert got.status == 401
            assert "Unknown token" in await got.text()
            assert COOKIE_NAME not in got.cookies
        async with session.post(
            f"{ui}/ui/login", data={"token": ADMIN, "next": "/ui/schedules"}, allow_redirects=False
        ) as got:
            assert (got.status, got.headers["Location"]) == (303, "/ui/schedules")
            cookie = got.cookies[COOKIE_NAME]
            assert cookie["httponly"] is True
            assert cookie["samesite"] == "Strict"
            assert cookie["path"] == "/ui"
            assert int(cookie["max-age"]) == 8 * 3600
            assert not cookie["secure"], "plain http: a Secure cookie would never come back"
            assert ADMIN not in cookie.value
        async with session.get(f"{ui}/ui/jobs") as got:
            assert got.status == 200
            text = await got.text()
            assert ADMIN not in text
            csrf = csrf_of(text)
        async with session.post(
            f"{ui}/ui/logout", data={"csrf": csrf}, allow_redirects=False
        ) as got:
            assert got.status == 303
        async with session.get(f"{ui}/ui/jobs", allow_redirects=False) as got:
            assert got.status == 303


@pytest.mark.parametrize(
    ("trusted", "forwarded", "secure"),
    [(False, "https", False), (True, "https", True), (True, "http", False)],
)
async def test_the_cookie_is_secure_behind_https_only_when_the_proxy_is_trusted(
    ui_ctx: ApiContext, trusted: bool, forwarded: str, secure: bool
) -> None:
    ui_ctx.settings = ui_ctx.settings.model_copy(update={"ui_trust_forwarded_proto": trusted})
    async with (
        serving(ui_ctx) as base,
        browser_session() as session,
        session.post(
            f"{base}/ui/login",
            data={"token": READER},
            headers={"X-Forwarded-Proto": forwarded},
            allow_redirects=False,
        ) as got,
    ):
        assert bool(got.cookies[COOKIE_NAME]["secure"]) is secure


async def test_a_forged_or_tampered_cookie_is_no_session(ui: str) -> None:
    async with browser_session() as session:
        await log_in(session, ui, READER)
        cookie = next(c for c in session.cookie_jar if c.key == COOKIE_NAME)
        body, mac = cookie.value.split(".")
        # The payload says admin now; the signature is the read-only one's.
        forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
        for value in (f"{forged}.{mac}", f"{body}.{mac[:-1]}x", "x" * 5000, "junk"):
            session.cookie_jar.clear()
            session.cookie_jar.update_cookies({COOKIE_NAME: value})
            async with session.get(f"{ui}/ui/jobs", allow_redirects=False) as got:
                assert got.status == 303, value[:40]


async def test_a_session_ends_when_its_token_is_removed(ui_ctx: ApiContext) -> None:
    async with browser_session() as session:
        async with serving(ui_ctx) as base:
            await log_in(session, base, READER)
        ui_ctx.settings = ui_ctx.settings.model_copy(update={"ui_tokens": None})
        async with (
            serving(ui_ctx) as base,
            session.get(f"{base}/ui/jobs", allow_redirects=False) as got,
        ):
            assert got.status == 303


async def test_every_answer_carries_the_security_headers(ui: str) -> None:
    async with browser_session() as session:
        await log_in(session, ui, ADMIN)
        for path in ("/ui/", "/ui/jobs", "/ui/login", "/ui/jobs/nope", "/ui/static/app.js"):
            async with session.get(f"{ui}{path}") as got:
                csp = got.headers["Content-Security-Policy"]
                assert "unsafe-inline" not in csp, path
                assert "unsafe-eval" not in csp, path
                assert "script-src 'self'" in csp
                assert "frame-ancestors 'none'" in csp
                assert got.headers["X-Content-Type-Options"] == "nosniff"
                assert got.headers["Referrer-Policy"] == "same-origin"
                if path.endswith(".js"):
                    continue
                assert got.headers["Cache-Control"] == "no-store"
                # Every script is the daemon's own file: none inline.
                assert "<script>" not in await got.text()


async def test_a_read_only_session_sees_no_action_and_is_refused_any(
    ui: str, pool: asyncpg.Pool
) -> None:
    job_id = await insert_job(pool, owner="u1", kind="orders", params={"since": "2025-01-01"})
    async with browser_session() as session:
        csrf = await log_in(session, ui, READER)
        async with session.get(f"{ui}/ui/jobs/{job_id}") as got:
            page = await got.text()
        assert "Cancel" not in page
        assert f"/ui/jobs/{job_id}/cancel" not in page
        async with session.get(f"{ui}/ui/") as got:
            assert "/pause" not in await got.text()
        for verb in ("cancel", "retry", "delete"):
            async with session.get(f"{ui}/ui/jobs/{job_id}/{verb}") as got:
                assert got.status == 403
            async with session.post(f"{ui}/ui/jobs/{job_id}/{verb}", data={"csrf": csrf}) as got:
                assert got.status == 403
                assert "read-only" in await got.text()
        async with session.post(f"{ui}/ui/kinds/orders/pause", data={"csrf": csrf}) as got:
            assert got.status == 403
    assert (await job_row(pool, job_id))["state"] == "pending"
    assert await pool.fetchval("SELECT count(*) FROM exportd.paused_kinds") == 0


async def test_an_action_without_the_sessions_csrf_token_is_refused(
    ui: str, pool: asyncpg.Pool
) -> None:
    job_id = await insert_job(pool, owner="u1", kind="orders", params={"since": "2025-01-01"})
    async with browser_session() as other:
        other_csrf = await log_in(other, ui, ADMIN)
    async with browser_session() as session:
        await log_in(session, ui, ADMIN)
        for form in ({}, {"csrf": ""}, {"csrf": other_csrf}, {"csrf": "x" * 10_000}):
            async with session.post(f"{ui}/ui/jobs/{job_id}/cancel", data=form) as got:
                assert got.status == 403
                assert "CSRF" in await got.text()
    assert (await job_row(pool, job_id))["state"] == "pending"


async def test_an_admin_action_is_logged_with_the_tokens_fingerprint(
    ui: str, pool: asyncpg.Pool
) -> None:
    job_id = await insert_job(pool, owner="u1", kind="orders", params={"since": "2025-01-01"})
    async with browser_session() as session:
        csrf = await log_in(session, ui, ADMIN)
        async with session.get(f"{ui}/ui/jobs/{job_id}/cancel") as got:
            assert got.status == 200
            assert 'id="confirm"' in await got.text()
        with capture_logs() as logs:
            async with session.post(
                f"{ui}/ui/jobs/{job_id}/cancel", data={"csrf": csrf}, allow_redirects=False
            ) as got:
                assert (got.status, got.headers["Location"]) == (303, f"/ui/jobs/{job_id}")
    assert (await job_row(pool, job_id))["state"] == "cancelled"
    [line] = [e for e in logs if e["event"] == "ui_action"]
    assert line["action"] == "cancel"
    assert line["job_id"] == str(job_id)
    assert line["by"].startswith("ui:")
    assert len(line["by"]) == 15
    assert ADMIN not in repr(logs)


async def test_an_owner_scoped_session_sees_and_acts_on_its_owner_only(
    ui: str, pool: asyncpg.Pool
) -> None:
    mine = await insert_job(pool, owner="alice", kind="orders", params={"since": "2025-01-01"})
    theirs = await insert_job(pool, owner="bob", kind="orders", params={"since": "2025-01-01"})
    async with browser_session() as session:
        csrf = await log_in(session, ui, ALICE_ADMIN)
        async with session.get(f"{ui}/ui/jobs") as got:
            page = await got.text()
        assert str(mine) in page
        assert str(theirs) not in page
        async with session.get(f"{ui}/ui/jobs?owner=bob") as got:
            page = await got.text()
        assert str(theirs) not in page
        assert "one owner" in page
        async with session.get(f"{ui}/ui/jobs/{theirs}") as got:
            assert got.status == 404
        async with session.post(f"{ui}/ui/jobs/{theirs}/cancel", data={"csrf": csrf}) as got:
            assert got.status == 404
        async with session.post(f"{ui}/ui/kinds/orders/pause", data={"csrf": csrf}) as got:
            assert got.status == 403
        async with session.get(f"{ui}/ui/", allow_redirects=False) as got:
            assert (got.status, got.headers["Location"]) == (303, "/ui/jobs")
    assert (await job_row(pool, theirs))["state"] == "pending"


async def test_failed_logins_are_throttled(ui: str) -> None:
    async with browser_session() as session:
        statuses = []
        for _ in range(11):
            async with session.post(
                f"{ui}/ui/login", data={"token": "not-a-token-0123456789"}
            ) as got:
                statuses.append(got.status)
        assert statuses == [401] * 10 + [429]
        # Not even the right token is compared until the window ends.
        async with session.post(f"{ui}/ui/login", data={"token": ADMIN}) as got:
            assert got.status == 429
            assert int(got.headers["Retry-After"]) >= 1


async def test_a_huge_token_or_next_is_refused_plainly(ui: str) -> None:
    async with browser_session() as session:
        async with session.post(
            f"{ui}/ui/login", data={"token": ADMIN + "x" * 100_000}, allow_redirects=False
        ) as got:
            assert got.status == 401
        for target in ("//evil.example/", "https://evil.example/", "/ui/\\evil", "/v1/jobs"):
            async with session.post(
                f"{ui}/ui/login", data={"token": ADMIN, "next": target}, allow_redirects=False
            ) as got:
                assert got.headers["Location"] == "/ui/", target


async def test_an_action_applies_only_to_the_states_it_names(ui: str, pool: asyncpg.Pool) -> None:
    """A "cancel" posted for a completed job never deletes its export, and a
    "delete" never cancels a pending job: each is refused (409), nothing changes."""
    pending = await insert_job(pool, owner="u1", kind="orders", params={"since": "2025-01-01"})
    done = await insert_job(pool, owner="u1", kind="everything")
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'processing', attempts = 1, worker_id = 'w',"
        " started_at = now(), lease_expires_at = now() + interval '1 minute' WHERE id = $1",
        done,
    )
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'completed', finished_at = now(), lease_expires_at = NULL,"
        " object_key = 'k/u1/x.csv', size_bytes = 1, expires_at = now() + interval '1 day'"
        " WHERE id = $1",
        done,
    )
    async with browser_session() as session:
        csrf = await log_in(session, ui, ADMIN)
        for job_id, verb in ((done, "cancel"), (pending, "delete"), (pending, "retry")):
            async with session.post(f"{ui}/ui/jobs/{job_id}/{verb}", data={"csrf": csrf}) as got:
                assert got.status == 409, (verb, await got.text())
    assert (await job_row(pool, done))["state"] == "completed"
    assert (await job_row(pool, pending))["state"] == "pending"


async def test_every_kind_is_paused_and_resumed_from_the_overview(
    ui: str, ui_ctx: ApiContext, pool: asyncpg.Pool
) -> None:
    await ui_ctx.queue.pause_kind("orders", paused_by="cli", reason=None)
    async with browser_session() as session:
        csrf = await log_in(session, ui, ADMIN)
        async with session.get(f"{ui}/ui/kinds/*/pause") as got:
            assert "Pause every kind?" in await got.text()
        async with session.post(
            f"{ui}/ui/kinds/*/pause", data={"csrf": csrf, "reason": "db upgrade"}
        ) as got:
            page = await got.text()
        assert "Every kind is paused" in page
        assert "db upgrade" in page
        assert 'href="/ui/kinds/*/resume"' in page
        async with session.post(f"{ui}/ui/kinds/*/resume", data={"csrf": csrf}) as got:
            page = await got.text()
        assert "Every kind is paused" not in page
    # The kind paused on its own stays paused: only the pause of every kind went.
    assert [p.kind for p in await ui_ctx.queue.paused_kinds()] == ["orders"]
    kinds = await pool.fetch("SELECT kind, paused_by FROM exportd.paused_kinds")
    assert [(r["kind"], r["paused_by"]) for r in kinds] == [("orders", "cli")]
