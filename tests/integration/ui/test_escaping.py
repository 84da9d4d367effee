"""Whatever an application writes into a job or a schedule is shown as text on
every page: owner, kind, params, error text, worker id, schedule fields."""

from __future__ import annotations

from urllib.parse import quote

import asyncpg
import pytest
from markupsafe import escape

from tests.support.ui_client import ADMIN, browser_session, log_in

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>']


def assert_inert(page: str) -> None:
    """None of the hostile strings is in the page as markup; each is as text."""
    for text in HOSTILE:
        assert text not in page
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_every_page_shows_caller_strings_as_text(
    ui: str, pool: asyncpg.Pool, hostile: str
) -> None:
    # The first hostile string is in every field, so that every page holds it
    # as text; the parametrized one rides along in the same fields.
    both = f"{HOSTILE[0]} {hostile}"
    job_id = await pool.fetchval(
        "INSERT INTO exportd.jobs (owner, kind, params) VALUES ($1, $1, $2::jsonb) RETURNING id",
        both,
        {both: both},
    )
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'processing', attempts = 1, worker_id = $2,"
        " started_at = now(), lease_expires_at = now() + interval '1 minute' WHERE id = $1",
        job_id,
        both,
    )
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'failed', error = $2, error_kind = 'query_error',"
        " finished_at = now(), lease_expires_at = NULL WHERE id = $1",
        job_id,
        both,
    )
    await pool.execute(
        "INSERT INTO exportd.schedules (owner, kind, cron, last_job_id, last_error)"
        " VALUES ($1, $1, '0 * * * *', $2, $1)",
        both,
        job_id,
    )
    async with browser_session() as session:
        await log_in(session, ui, ADMIN)
        pages = [
            "/ui/",
            "/ui/jobs",
            f"/ui/jobs?owner={quote(both)}&kind={quote(both)}",
            f"/ui/jobs/{job_id}",
            f"/ui/jobs/{job_id}/retry",
            "/ui/schedules",
        ]
        for path in pages:
            async with session.get(f"{ui}{path}") as got:
                assert got.status == 200, path
                page = await got.text()
            assert_inert(page)
            assert str(escape(hostile)) in page, path
