"""Pausing and resuming kinds over HTTP, against real Postgres and a real S3 server."""

from __future__ import annotations

import aiohttp
import asyncpg
import pytest
from structlog.testing import capture_logs

from exportd.api.context import ApiContext
from exportd.metrics import Metrics
from exportd.queue.postgres import PgJobStore
from tests.support.fixtures_api import AUTH, call, serving
from tests.support.helpers import insert_job

LEASE = 30.0


async def test_pause_and_resume_a_kind_answer_its_state(api: str, pool: asyncpg.Pool) -> None:
    with capture_logs() as logs:
        status, body, _ = await call(
            "POST", f"{api}/v1/kinds/orders/pause", AUTH, json={"reason": "source upgrade"}
        )
    assert status == 200, body
    assert body["kind"] == "orders"
    assert (body["paused"], body["paused_all"], body["paused_by"], body["reason"]) == (
        True,
        False,
        "api",
        "source upgrade",
    )
    [paused] = [e for e in logs if e["event"] == "kind_paused"]
    assert (paused["kind"], paused["paused_by"], paused["already_paused"]) == (
        "orders",
        "api",
        False,
    )

    # Idempotent: the first pause stays, with its reason.
    status, again, _ = await call("POST", f"{api}/v1/kinds/orders/pause", AUTH)
    assert (status, again) == (200, body)

    job_id = await insert_job(pool, kind="orders")
    assert await PgJobStore(pool).claim("w1", 5, LEASE) == []

    with capture_logs() as logs:
        status, body, _ = await call("POST", f"{api}/v1/kinds/orders/resume", AUTH)
    assert status == 200, body
    assert body == {
        "kind": "orders",
        "paused": False,
        "paused_all": False,
        "paused_at": None,
        "paused_by": None,
        "reason": None,
    }
    assert [(e["kind"], e["resumed_by"]) for e in logs if e["event"] == "kind_resumed"] == [
        ("orders", "api")
    ]
    assert [j.id for j in await PgJobStore(pool).claim("w1", 5, LEASE)] == [job_id]
    status, body, _ = await call("POST", f"{api}/v1/kinds/orders/resume", AUTH)
    assert (status, body["paused"]) == (200, False)


async def test_every_kind_pauses_and_resumes_at_once(api: str, pool: asyncpg.Pool) -> None:
    await call("POST", f"{api}/v1/kinds/bundle/pause", AUTH)
    status, body, _ = await call("POST", f"{api}/v1/kinds/pause", AUTH, json={"reason": "db"})
    assert status == 200, body
    assert (body["paused"], body["paused_by"], body["reason"]) == (True, "api", "db")
    kinds = {k["kind"]: k for k in body["kinds"]}
    assert set(kinds) == {"orders", "everything", "bundle"}
    assert all(k["paused"] and k["paused_all"] for k in kinds.values())
    assert kinds["orders"]["reason"] == "db"
    assert kinds["bundle"]["reason"] is None  # its own pause, which came first

    # A kind's own resume does not lift the pause of every kind.
    status, body, _ = await call("POST", f"{api}/v1/kinds/orders/resume", AUTH)
    assert (status, body["paused"], body["paused_all"]) == (200, True, True)
    await insert_job(pool, kind="orders")
    assert await PgJobStore(pool).claim("w1", 5, LEASE) == []

    status, body, _ = await call("POST", f"{api}/v1/kinds/resume", AUTH)
    assert status == 200, body
    assert body["paused"] is False
    assert not any(k["paused"] for k in body["kinds"])
    assert [j.kind for j in await PgJobStore(pool).claim("w1", 5, LEASE)] == ["orders"]


async def test_the_list_of_kinds_shows_which_are_paused(api: str) -> None:
    await call("POST", f"{api}/v1/kinds/orders/pause", AUTH, json={"reason": "maintenance"})
    status, body, _ = await call("GET", f"{api}/v1/kinds", AUTH)
    assert status == 200
    kinds = {k["name"]: k for k in body["kinds"]}
    assert kinds["orders"]["paused"] is True
    assert kinds["orders"]["reason"] == "maintenance"
    assert kinds["orders"]["paused_at"] is not None
    assert "paused_by" not in kinds["orders"]
    assert (kinds["everything"]["paused"], kinds["everything"]["paused_at"]) == (False, None)


@pytest.mark.parametrize(
    "path", ["/v1/kinds/orders/pause", "/v1/kinds/orders/resume", "/v1/kinds/pause"]
)
async def test_an_owner_scope_is_refused_with_403(api: str, pool: asyncpg.Pool, path: str) -> None:
    status, body, _ = await call("POST", f"{api}{path}", {**AUTH, "X-Exportd-Owner": "u1"})
    assert (status, body["error"]) == (403, "forbidden"), body
    status, body, _ = await call("POST", f"{api}{path}?owner_scope=u1", AUTH)
    assert (status, body["error"]) == (403, "forbidden"), body
    assert await PgJobStore(pool).paused_kinds() == []


@pytest.mark.parametrize("kind", ["nope", "Orders", "*", "a" * 300])
async def test_an_unknown_kind_is_404(api: str, pool: asyncpg.Pool, kind: str) -> None:
    for verb in ("pause", "resume"):
        status, body, _ = await call("POST", f"{api}/v1/kinds/{kind}/{verb}", AUTH)
        assert (status, body["error"]) == (404, "not_found"), body
    assert await PgJobStore(pool).paused_kinds() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "x" * 1025}, "reason"),
        ({"reason": "a\nb"}, "reason"),
        ({"reason": 5}, "reason"),
        ({"why": "x"}, "why"),
        (["reason"], ""),
    ],
)
async def test_a_bad_reason_is_400_and_pauses_nothing(
    api: str, pool: asyncpg.Pool, body: object, field: str
) -> None:
    status, answer, _ = await call("POST", f"{api}/v1/kinds/orders/pause", AUTH, json=body)
    assert (status, answer["error"]) == (400, "invalid_request"), answer
    assert [e["field"] for e in answer["errors"]] == [field]
    assert await PgJobStore(pool).paused_kinds() == []


async def test_readiness_stays_and_metrics_show_the_paused_kinds(
    api_ctx: ApiContext, pool: asyncpg.Pool
) -> None:
    api_ctx.metrics = Metrics(kinds=api_ctx.definitions.names())
    async with serving(api_ctx) as base:
        await call("POST", f"{base}/v1/kinds/orders/pause", AUTH)
        status, body, _ = await call("GET", f"{base}/readyz")
        assert (status, body["status"]) == (200, "ready")
        text = await _scrape(base)
        assert 'exportd_kind_paused{kind="orders"} 1.0' in text
        assert 'exportd_kind_paused{kind="everything"} 0.0' in text
        assert 'exportd_kind_paused{kind="*"} 0.0' in text
    # A fresh app (its figures cached for a few seconds) after every kind is paused.
    await PgJobStore(pool).pause_kind("*", paused_by="test")
    async with serving(api_ctx) as base:
        text = await _scrape(base)
        assert 'exportd_kind_paused{kind="everything"} 1.0' in text
        assert 'exportd_kind_paused{kind="*"} 1.0' in text
        assert (await call("GET", f"{base}/readyz"))[0] == 200


async def _scrape(base: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        assert response.status == 200
        return await response.text()
