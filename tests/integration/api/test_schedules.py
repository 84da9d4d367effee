"""The /v1/schedules routes against real Postgres."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import pytest

from exportd.api import schedules as api_schedules
from tests.support.fixtures_api import AUTH, call

U1 = {**AUTH, "X-Exportd-Owner": "u1"}
U2 = {**AUTH, "X-Exportd-Owner": "u2"}
MONDAYS = {
    "owner": "u1",
    "kind": "orders",
    "params": {"since": "2025-01-01"},
    "cron": "0 8 * * 1",
    "timezone": "Europe/Zurich",
}


async def delete(url: str, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.delete(url, headers=headers) as r:
        return r.status


async def test_create_answers_201_with_the_schedule_and_its_first_run(
    api: str, pool: asyncpg.Pool
) -> None:
    status, body, headers = await call("POST", f"{api}/v1/schedules", AUTH, json=MONDAYS)
    assert status == 201, body
    assert headers["Location"] == f"/v1/schedules/{body['id']}"
    assert (body["owner"], body["kind"], body["format"], body["options"], body["enabled"]) == (
        "u1",
        "orders",
        "csv",
        {},
        True,
    )
    first = datetime.fromisoformat(body["next_run_at"])
    assert first > datetime.now(UTC)
    assert first.astimezone(ZoneInfo("Europe/Zurich")).strftime("%a %H:%M") == "Mon 08:00"
    row = await pool.fetchrow(
        "SELECT * FROM exportd.schedules WHERE id = $1", uuid.UUID(body["id"])
    )
    assert row is not None
    assert row["next_run_at"] == first
    assert row["params"] == {"since": "2025-01-01"}


async def test_create_lists_every_problem_at_once(api: str) -> None:
    status, body, _ = await call(
        "POST",
        f"{api}/v1/schedules",
        AUTH,
        json={
            "owner": "u1",
            "kind": "orders",
            "params": {"since": "yesterday-ish"},
            "format": "pdf",
            "options": {"timezone": "Mars/Olympus", "columns": []},
            "cron": "0 8 * *",
            "timezone": "Mars/Olympus",
            "enabled": "yes",
            "color": "blue",
        },
    )
    assert status == 400, body
    fields = {e["field"] for e in body["errors"]}
    assert fields == {
        "color",
        "params.since",
        "format",
        "options.timezone",
        "options.columns",
        "cron",
        "timezone",
        "enabled",
    }
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert "not a time zone the database knows" in messages["options.timezone"]
    assert "at least one column" in messages["options.columns"]


async def test_create_refuses_an_unknown_kind_and_unbounded_strings(api: str) -> None:
    status, body, _ = await call(
        "POST",
        f"{api}/v1/schedules",
        AUTH,
        json={"owner": "o" * 300, "kind": "nope", "cron": "x" * 300},
    )
    assert status == 400
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert "no export kind named 'nope'" in messages["kind"]
    assert "256 bytes" in messages["owner"]
    assert "256 bytes" in messages["cron"]


async def test_the_owner_scope_confines_every_route(api: str) -> None:
    _, mine, _ = await call("POST", f"{api}/v1/schedules", U1, json={**MONDAYS, "owner": None})
    assert mine["owner"] == "u1"
    status, body, _ = await call("POST", f"{api}/v1/schedules", U2, json=MONDAYS)
    assert status == 400
    assert body["errors"] == [
        {"field": "owner", "message": "must equal the owner scope of the request"}
    ]
    url = f"{api}/v1/schedules/{mine['id']}"
    assert (await call("GET", url, U2))[0] == 404
    assert (await call("PATCH", url, U2, json={"enabled": False}))[0] == 404
    assert await delete(url, U2) == 404
    status, listing, _ = await call("GET", f"{api}/v1/schedules", U2)
    assert (status, listing["schedules"]) == (200, [])
    assert (await call("GET", f"{api}/v1/schedules?owner=u1", U2))[0] == 400
    status, got, _ = await call("GET", url, U1)
    assert (status, got["id"]) == (200, mine["id"])


async def test_list_is_newest_first_a_page_at_a_time(api: str) -> None:
    made = []
    for _ in range(3):
        _, body, _ = await call("POST", f"{api}/v1/schedules", AUTH, json=MONDAYS)
        made.append(body["id"])
    await call("POST", f"{api}/v1/schedules", AUTH, json={**MONDAYS, "owner": "u2"})
    status, first, _ = await call("GET", f"{api}/v1/schedules?owner=u1&limit=2", AUTH)
    assert status == 200
    assert [s["id"] for s in first["schedules"]] == made[::-1][:2]
    status, second, _ = await call(
        "GET", f"{api}/v1/schedules?owner=u1&limit=2&cursor={first['next_cursor']}", AUTH
    )
    assert [s["id"] for s in second["schedules"]] == [made[0]]
    assert second["next_cursor"] is None
    status, body, _ = await call("GET", f"{api}/v1/schedules?limit=0&cursor=zz", AUTH)
    assert status == 400
    assert {e["field"] for e in body["errors"]} == {"owner", "limit", "cursor"}


async def test_patch_recomputes_the_next_run_when_cron_or_zone_change(api: str) -> None:
    _, made, _ = await call("POST", f"{api}/v1/schedules", AUTH, json=MONDAYS)
    url = f"{api}/v1/schedules/{made['id']}"
    status, body, _ = await call("PATCH", url, AUTH, json={"timezone": "America/New_York"})
    assert status == 200, body
    moved = datetime.fromisoformat(body["next_run_at"])
    assert moved.astimezone(ZoneInfo("America/New_York")).strftime("%a %H:%M") == "Mon 08:00"
    status, body, _ = await call("PATCH", url, AUTH, json={"cron": "@daily"})
    daily = datetime.fromisoformat(body["next_run_at"])
    assert daily.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "00:00"
    assert (daily - datetime.now(UTC)).total_seconds() <= 86400
    # Params and format change too, checked against the schedule's kind.
    status, body, _ = await call(
        "PATCH", url, AUTH, json={"params": {"since": "2024-06-01"}, "format": "jsonl"}
    )
    assert (status, body["params"], body["format"]) == (200, {"since": "2024-06-01"}, "jsonl")
    assert body["next_run_at"] == daily.isoformat()  # neither moves the next run


async def test_patch_disables_and_enabling_again_starts_from_the_next_occurrence(
    api: str, pool: asyncpg.Pool
) -> None:
    _, made, _ = await call("POST", f"{api}/v1/schedules", AUTH, json=MONDAYS)
    url = f"{api}/v1/schedules/{made['id']}"
    status, body, _ = await call("PATCH", url, AUTH, json={"enabled": False})
    assert (status, body["enabled"]) == (200, False)
    # Long disabled: its next run is in the past.
    await pool.execute(
        "UPDATE exportd.schedules SET next_run_at = '2020-01-06T07:00:00Z' WHERE id = $1",
        uuid.UUID(made["id"]),
    )
    status, body, _ = await call("PATCH", url, AUTH, json={"enabled": True})
    assert (status, body["enabled"]) == (200, True)
    assert datetime.fromisoformat(body["next_run_at"]) > datetime.now(UTC)


async def test_patch_lists_every_problem_and_changes_nothing(api: str) -> None:
    _, made, _ = await call("POST", f"{api}/v1/schedules", AUTH, json=MONDAYS)
    url = f"{api}/v1/schedules/{made['id']}"
    status, body, _ = await call(
        "PATCH",
        url,
        AUTH,
        json={
            "cron": "@never",
            "params": {},
            "options": {"csv": {"bom": "yes"}},
            "kind": "everything",
            "enabled": 1,
        },
    )
    assert status == 400
    assert {e["field"] for e in body["errors"]} == {
        "cron",
        "params.since",
        "options.csv.bom",
        "kind",
        "enabled",
    }
    assert (await call("GET", url, AUTH))[1] == made


async def test_delete_answers_204_then_404_and_keeps_the_jobs(api: str, pool: asyncpg.Pool) -> None:
    _, made, _ = await call("POST", f"{api}/v1/schedules", AUTH, json=MONDAYS)
    schedule_id = uuid.UUID(made["id"])
    job_id = await pool.fetchval(
        "INSERT INTO exportd.jobs (owner, kind, schedule_id) VALUES ('u1', 'orders', $1)"
        " RETURNING id",
        schedule_id,
    )
    url = f"{api}/v1/schedules/{made['id']}"
    assert await delete(url, U1) == 204
    assert (await call("GET", url, AUTH))[0] == 404
    assert await delete(url, AUTH) == 404
    assert await delete(f"{api}/v1/schedules/not-an-id", AUTH) == 404
    status, job, _ = await call("GET", f"{api}/v1/jobs/{job_id}", AUTH)
    assert (status, job["schedule_id"]) == (200, made["id"])


async def test_patch_disables_a_schedule_whose_cron_or_zone_cannot_be_read(
    api: str, pool: asyncpg.Pool
) -> None:
    # Rows an application inserted itself: the table takes both, the daemon reads neither.
    for cron_text, zone, field in (
        ("0 0 30 2 *", "UTC", "cron"),
        ("0 8 * * 1", "Mars/Olympus", "timezone"),
    ):
        schedule_id = await pool.fetchval(
            "INSERT INTO exportd.schedules (owner, kind, params, cron, timezone)"
            " VALUES ('u1', 'orders', '{\"since\": \"2025-01-01\"}', $1, $2) RETURNING id",
            cron_text,
            zone,
        )
        url = f"{api}/v1/schedules/{schedule_id}"
        status, body, _ = await call("PATCH", url, U1, json={"enabled": False})
        assert (status, body["enabled"], body["cron"], body["timezone"]) == (
            200,
            False,
            cron_text,
            zone,
        ), body
        # Enabling it again needs what it runs on to be readable: 400 says which.
        status, body, _ = await call("PATCH", url, U1, json={"enabled": True})
        assert status == 400
        assert [e["field"] for e in body["errors"]] == [field]
        status, body, _ = await call(
            "PATCH", url, U1, json={"enabled": True, "cron": "0 8 * * 1", "timezone": "UTC"}
        )
        assert (status, body["enabled"]) == (200, True), body
        assert datetime.fromisoformat(body["next_run_at"]) > datetime.now(UTC)


async def test_next_runs_follow_the_database_clock_not_the_daemons(
    api: str, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This daemon's clock is an hour behind the database's, which the scheduler's
    # rounds compare: a next run computed from it would be due at once, and run
    # an occurrence from before the schedule existed.
    class Behind(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Behind:
            return cls.fromtimestamp(time.time() - 3600, tz)

    monkeypatch.setattr(api_schedules, "datetime", Behind)
    every5 = {**MONDAYS, "cron": "*/5 * * * *"}
    status, made, _ = await call("POST", f"{api}/v1/schedules", AUTH, json=every5)
    assert status == 201, made
    db_now = await pool.fetchval("SELECT clock_timestamp()")
    assert datetime.fromisoformat(made["next_run_at"]) > db_now
    url = f"{api}/v1/schedules/{made['id']}"
    status, body, _ = await call("PATCH", url, AUTH, json={"cron": "*/10 * * * *"})
    assert status == 200, body
    assert datetime.fromisoformat(body["next_run_at"]) > db_now


async def test_a_stored_number_python_cannot_hold_is_listed_and_kept_by_a_patch(
    api: str, pool: asyncpg.Pool
) -> None:
    # An application may store 1e5000 in a schedule's params (5,001 digits):
    # it is read back as its digits, and a PATCH that does not send the
    # document leaves it exactly as stored, never re-encoded as a string.
    schedule_id = await pool.fetchval(
        "INSERT INTO exportd.schedules (owner, kind, params, cron)"
        " VALUES ('u1', 'orders', '{\"since\": \"2025-01-01\", \"n\": 1e5000}',"
        " '0 8 * * 1') RETURNING id"
    )
    before = await pool.fetchval(
        "SELECT params::text FROM exportd.schedules WHERE id = $1", schedule_id
    )
    status, body, _ = await call("GET", f"{api}/v1/schedules?owner=u1", U1)
    assert status == 200, body
    assert [s["params"]["n"] for s in body["schedules"]] == ["1" + "0" * 5000]
    status, body, _ = await call(
        "PATCH", f"{api}/v1/schedules/{schedule_id}", U1, json={"enabled": False}
    )
    assert (status, body["enabled"]) == (200, False), body
    after = await pool.fetchval(
        "SELECT params::text FROM exportd.schedules WHERE id = $1", schedule_id
    )
    assert after == before


async def test_a_bad_zone_hides_no_problem_of_the_cron_expression(api: str) -> None:
    body = {
        "owner": "u1",
        "kind": "orders",
        "params": {"since": "2025-01-01"},
        "cron": "61 * * * *",
        "timezone": "Mars/Base",
    }
    status, answer, _ = await call("POST", f"{api}/v1/schedules", U1, json=body)
    assert status == 400
    assert sorted(e["field"] for e in answer["errors"]) == ["cron", "timezone"]
