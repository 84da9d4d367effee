"""The webhook outbox and its deliverer against real Postgres and a real receiver.

Jobs change state by the statements every path uses (exportd.cancel(), the
UPDATEs of retention and of the daemon); the deliverer runs in-process with
quick retries, and every request is verified by the Standard Webhooks
reference library in the receiver (tests/support/webhook_receiver.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from exportd.api.views import job_document
from exportd.definitions.loader import definitions_from_text
from exportd.maintenance.purge import Purge
from exportd.maintenance.webhook_purge import WebhookPurge
from exportd.metrics import Metrics
from exportd.queue.outbox import DELIVERIES_SHOWN as OUTBOX_DELIVERIES_SHOWN
from exportd.queue.outbox import Outbox
from exportd.queue.postgres import PgJobStore
from exportd.webhooks.deliverer import Deliverer, DelivererConfig
from exportd.webhooks.metrics import WebhookMetrics
from exportd.webhooks.policy import RetryPolicy
from exportd.webhooks.signing import decode_secrets
from tests.support.helpers import eventually, insert_job
from tests.support.webhook_receiver import HANG, Receiver, new_secret, receiving

KINDS = """
[kinds.orders]
query = "SELECT 1 AS n WHERE :owner <> ''"

[kinds.own]
query = "SELECT 1 AS n WHERE :owner <> ''"
webhook_url = "{own}"

[kinds.quiet]
query = "SELECT 1 AS n WHERE :owner <> ''"
"""


@contextlib.asynccontextmanager
async def delivering(
    pool: asyncpg.Pool,
    receiver: Receiver,
    *,
    default: str | None = "/hook",
    own: str = "/own",
    timeout: float = 1.0,
    period: float = 60.0,
    document: Callable[[Any], dict[str, Any]] = job_document,
    no_urls: bool = False,
) -> AsyncIterator[Metrics]:
    """A deliverer on ``pool`` sending to ``receiver`` until the block ends."""
    kinds = definitions_from_text(KINDS.replace("{own}", receiver.url(own)))
    metrics = Metrics()
    config = DelivererConfig(
        default_url=receiver.url(default) if default and not no_urls else None,
        keys=[k for s in receiver.secrets for k in decode_secrets(s)],
        timeout_seconds=timeout,
        concurrency=4,
        poll_interval=0.1,
        retry=RetryPolicy(base_seconds=0.2, max_seconds=0.5, period_seconds=period, jitter=0),
    )
    deliverer = Deliverer(
        Outbox(pool),
        {} if no_urls else kinds,
        config,
        document,
        f"test-{uuid.uuid4().hex[:6]}",
        metrics=WebhookMetrics(metrics.registry),
    )
    task = asyncio.create_task(deliverer.run())
    try:
        yield metrics
    finally:
        task.cancel()
        started = time.monotonic()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        # Shutdown always ends, and promptly, whatever is in flight.
        assert time.monotonic() - started < 5


async def deliveries(db: asyncpg.Pool | asyncpg.Connection, job_id: uuid.UUID) -> list[Any]:
    rows: list[Any] = await db.fetch(
        "SELECT * FROM exportd.webhook_deliveries WHERE job_id = $1 ORDER BY seq", job_id
    )
    return rows


async def settled(pool: asyncpg.Pool, job_id: uuid.UUID, count: int = 1) -> list[Any]:
    async def check() -> list[Any] | None:
        rows = await deliveries(pool, job_id)
        done = [r for r in rows if r["state"] != "pending"]
        return rows if len(done) >= count else None

    result = await eventually(check, timeout=30)
    return list(result)


async def cancelled_job(pool: asyncpg.Pool, kind: str = "orders") -> uuid.UUID:
    job_id = await insert_job(pool, owner="o", kind=kind)
    assert await pool.fetchval("SELECT exportd.cancel($1)", job_id)
    return job_id


def verified(receiver: Receiver) -> None:
    assert receiver.received
    assert all(all(r.verified) for r in receiver.received), [r.verified for r in receiver.received]


# --- the outbox: one row per real change, in the same transaction ----------------------


async def test_each_terminal_change_records_one_delivery_and_a_rollback_none(
    pool: asyncpg.Pool,
) -> None:
    job_id = await insert_job(pool, owner="o")
    assert await deliveries(pool, job_id) == []  # pending: no event
    async with pool.acquire() as conn:
        with contextlib.suppress(RuntimeError):
            async with conn.transaction():
                await conn.fetchval("SELECT exportd.cancel($1)", job_id)
                assert len(await deliveries(conn, job_id)) == 1
                raise RuntimeError("roll back")
    assert await deliveries(pool, job_id) == []
    assert (await pool.fetchval("SELECT state FROM exportd.jobs WHERE id = $1", job_id)) == (
        "pending"
    )
    await pool.fetchval("SELECT exportd.cancel($1)", job_id)
    # An UPDATE that sets the state it already has is no event.
    await pool.execute("UPDATE exportd.jobs SET state = 'cancelled' WHERE id = $1", job_id)
    rows = await deliveries(pool, job_id)
    assert [(r["event_type"], r["state"], r["attempts"]) for r in rows] == [
        ("export.cancelled", "pending", 0)
    ]
    # A row inserted already terminal is an event too.
    inserted = await pool.fetchval(
        "INSERT INTO exportd.jobs (owner, kind, state, finished_at) "
        "VALUES ('o', 'orders', 'failed', now()) RETURNING id"
    )
    assert [r["event_type"] for r in await deliveries(pool, inserted)] == ["export.failed"]


# --- delivery ---------------------------------------------------------------------------


async def test_an_event_is_delivered_signed_with_every_rotated_secret(pool: asyncpg.Pool) -> None:
    async with receiving([new_secret(), new_secret(48)]) as receiver:
        job_id = await cancelled_job(pool)
        async with delivering(pool, receiver) as metrics:
            rows = await settled(pool, job_id)
    verified(receiver)
    [got] = receiver.at("/hook")
    assert rows[0]["state"] == "delivered"
    assert got.id == f"msg_{rows[0]['id'].hex}"
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("exportd/")
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 30
    payload = got.payload
    assert payload["type"] == "export.cancelled"
    assert datetime.fromisoformat(payload["timestamp"]) == rows[0]["occurred_at"]
    data = payload["data"]
    assert data["id"] == str(job_id)
    assert data["state"] == "cancelled"
    assert data["owner"] == "o"
    assert "download_url" not in data
    assert "upload_id" not in data
    assert metrics.value("exportd_webhook_deliveries_total", {"outcome": "delivered"}) == 1


async def test_500_then_200_sends_one_event_twice_with_the_same_id(pool: asyncpg.Pool) -> None:
    async with receiving([new_secret()]) as receiver:
        receiver.on("/hook", 500)
        job_id = await cancelled_job(pool)
        async with delivering(pool, receiver) as metrics:
            [row] = await settled(pool, job_id)
    verified(receiver)
    first, second = receiver.at("/hook")
    assert first.id == second.id == f"msg_{row['id'].hex}"
    assert first.body == second.body
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 2, 200)
    attempts = await pool.fetch(
        "SELECT * FROM exportd.webhook_attempts WHERE delivery_id = $1 ORDER BY attempt", row["id"]
    )
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 200)]
    assert all(a["latency_ms"] >= 0 for a in attempts)
    assert metrics.value("exportd_webhook_deliveries_total", {"outcome": "retrying"}) == 1


async def test_a_4xx_fails_the_delivery_at_once_and_429_is_retried(pool: asyncpg.Pool) -> None:
    async with receiving([new_secret()]) as receiver:
        # The answer's body is read only so far, and kept without what text cannot hold.
        receiver.on("/hook", 429, (422, {}, b"bad\x00field " + b"x" * 100_000))
        job_id = await cancelled_job(pool)
        async with delivering(pool, receiver) as metrics:
            [row] = await settled(pool, job_id)
    assert [r.id for r in receiver.at("/hook")] == [f"msg_{row['id'].hex}"] * 2
    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 2, 422)
    assert row["last_error"].startswith("HTTP 422: bad?field xxx")
    assert "refused" in row["last_error"]
    assert len(row["last_error"]) < 700
    assert metrics.value("exportd_webhook_deliveries_total", {"outcome": "failed"}) == 1


async def test_a_429_with_an_odd_retry_after_is_recorded_and_retried(pool: asyncpg.Pool) -> None:
    # "²" passed str.isdigit() and failed float(): the delivery's task crashed
    # before recording its attempt, and the event waited for its lease (7 s
    # here) at every attempt, for ever.
    async with receiving([new_secret()]) as receiver:
        receiver.on("/hook", (429, {"Retry-After": "\u00b2"}, b""), 200)
        job_id = await cancelled_job(pool)
        started = time.monotonic()
        async with delivering(pool, receiver) as metrics:
            [row] = await settled(pool, job_id)
            assert time.monotonic() - started < 6
    attempts = await pool.fetch(
        "SELECT attempt, status FROM exportd.webhook_attempts WHERE delivery_id = $1 "
        "ORDER BY attempt",
        row["id"],
    )
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 429), (2, 200)]
    assert metrics.value("exportd_webhook_deliveries_total", {"outcome": "retrying"}) == 1


async def test_a_redirect_is_not_followed(pool: asyncpg.Pool) -> None:
    async with receiving([new_secret()]) as receiver:
        receiver.on("/hook", (302, {"Location": receiver.url("/elsewhere")}))
        job_id = await cancelled_job(pool)
        async with delivering(pool, receiver):
            await receiver.wait_for(2)  # retried at the configured URL
            [row] = await settled(pool, job_id)
    assert receiver.at("/elsewhere") == []
    attempts = await pool.fetch(
        "SELECT status, error FROM exportd.webhook_attempts WHERE delivery_id = $1 "
        "ORDER BY attempt",
        row["id"],
    )
    assert attempts[0]["status"] == 302
    assert "not followed" in attempts[0]["error"]
    assert row["state"] == "delivered"


async def test_retries_end_with_the_retry_period(pool: asyncpg.Pool) -> None:
    async with receiving([new_secret()]) as receiver:
        receiver.on("/hook", *([503] * 50))
        job_id = await cancelled_job(pool)
        async with delivering(pool, receiver, period=1.5):
            [row] = await settled(pool, job_id)
    assert row["state"] == "failed"
    assert row["last_status"] == 503
    assert "gave up" in row["last_error"]
    assert 2 <= row["attempts"] <= 12


async def test_a_kind_s_own_url_wins_and_no_target_is_not_retried(pool: asyncpg.Pool) -> None:
    async with receiving([new_secret()]) as receiver:
        own = await cancelled_job(pool, "own")
        unknown = await cancelled_job(pool, "no_such_kind")
        async with delivering(pool, receiver, default=None):
            [own_row] = await settled(pool, own)
            [none_row] = await settled(pool, unknown)
    assert [r.payload["data"]["id"] for r in receiver.at("/own")] == [str(own)]
    assert receiver.at("/hook") == []
    assert own_row["state"] == "delivered"
    assert (none_row["state"], none_row["attempts"]) == ("no_target", 0)


async def test_without_any_url_events_are_finished_in_bulk(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO exportd.jobs (owner, kind, state, finished_at) "
        "SELECT 'o', 'orders', 'failed', now() FROM generate_series(1, 1200)"
    )
    started = time.monotonic()
    async with receiving([new_secret()]) as receiver, delivering(pool, receiver, no_urls=True):

        async def done() -> bool:
            left = await pool.fetchval(
                "SELECT count(*) FROM exportd.webhook_deliveries WHERE state = 'pending'"
            )
            return bool(left == 0)

        await eventually(done, timeout=30)
    assert time.monotonic() - started < 10
    assert receiver.received == []
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM exportd.webhook_deliveries WHERE state = 'no_target'"
        )
        == 1200
    )


async def test_in_order_per_job(pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool, owner="o")
    # completed, then expired: two events of one job, the first refused for a while.
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'completed', finished_at = now(), "
        "expires_at = now() WHERE id = $1",
        job_id,
    )
    await pool.execute("UPDATE exportd.jobs SET state = 'expired' WHERE id = $1", job_id)
    async with receiving([new_secret()]) as receiver:
        receiver.on("/hook", 503, 503, 503)
        async with delivering(pool, receiver):
            rows = await settled(pool, job_id, 2)
    types = [r.payload["type"] for r in receiver.at("/hook")]
    assert types == ["export.completed"] * 4 + ["export.expired"]
    assert [r["state"] for r in rows] == ["delivered", "delivered"]


async def test_a_receiver_that_never_answers_holds_up_no_other_delivery(
    pool: asyncpg.Pool,
) -> None:
    async with receiving([new_secret()]) as receiver:
        receiver.on("/own", *([HANG] * 10))
        stuck = await cancelled_job(pool, "own")
        others = [await cancelled_job(pool) for _ in range(6)]
        started = time.monotonic()
        async with delivering(pool, receiver, timeout=3.0):
            for job_id in others:
                await settled(pool, job_id)
            elapsed = time.monotonic() - started
            [stuck_row] = await deliveries(pool, stuck)
    # Six deliveries behind a receiver that hangs, done well within its deadline.
    assert elapsed < 3.0
    assert stuck_row["state"] == "pending"
    assert len(receiver.at("/hook")) == 6


async def test_a_row_whose_body_cannot_be_built_fails_alone(pool: asyncpg.Pool) -> None:
    bad, good = await cancelled_job(pool), await cancelled_job(pool)

    def document(row: Any) -> dict[str, Any]:
        if row["id"] == bad:
            raise ValueError("a value no JSON can carry")
        return job_document(row)

    async with (
        receiving([new_secret()]) as receiver,
        delivering(pool, receiver, document=document),
    ):
        [bad_row] = await settled(pool, bad)
        [good_row] = await settled(pool, good)
    assert (bad_row["state"], bad_row["attempts"]) == ("failed", 1)
    assert "cannot build the body" in bad_row["last_error"]
    assert good_row["state"] == "delivered"
    assert [r.payload["data"]["id"] for r in receiver.received] == [str(good)]


async def test_a_lease_that_ran_out_is_delivered_again(pool: asyncpg.Pool) -> None:
    # A daemon that died mid-request: its claim (attempt spent, lease running)
    # is all that remains.
    job_id = await cancelled_job(pool)
    dead = await Outbox(pool).claim("dead-daemon", 10, 0.5)
    assert [c.job_id for c in dead] == [job_id]
    async with receiving([new_secret()]) as receiver:
        async with delivering(pool, receiver):
            [row] = await settled(pool, job_id)
        # The dead daemon's late outcome is refused: the attempt is no longer its.
        from exportd.queue.outbox import Outcome

        late = Outcome("failed", 0, 500, "late", datetime.now(UTC), 1)
        assert not await Outbox(pool).record(dead[0], late)
    assert (row["state"], row["attempts"]) == ("delivered", 2)
    verified(receiver)


# --- API, purge ---------------------------------------------------------------------------


async def test_get_job_lists_its_deliveries(pool: asyncpg.Pool) -> None:
    async with receiving([new_secret()]) as receiver:
        receiver.on("/hook", 500)
        job_id = await cancelled_job(pool)
        async with delivering(pool, receiver):
            [row] = await settled(pool, job_id)
    from exportd.api.views import with_deliveries

    store = PgJobStore(pool)
    doc = with_deliveries({}, await store.deliveries(job_id))
    [shown] = doc["deliveries"]
    assert shown["id"] == f"msg_{row['id'].hex}"
    assert (shown["type"], shown["state"], shown["attempts"]) == (
        "export.cancelled",
        "delivered",
        2,
    )
    assert [(a["attempt"], a["status"]) for a in shown["recent_attempts"]] == [(1, 500), (2, 200)]
    assert shown["next_attempt_at"] is None
    assert shown["finished_at"] is not None


@pytest.mark.parametrize("what", ["delivery", "job"])
async def test_purge_takes_finished_deliveries_and_those_of_purged_jobs(
    pool: asyncpg.Pool, what: str
) -> None:
    async with receiving([new_secret()]) as receiver:
        job_id = await cancelled_job(pool)
        async with delivering(pool, receiver):
            await settled(pool, job_id)
        # No deliverer runs now: this event stays pending.
        waiting = await cancelled_job(pool)
        await pool.execute(
            "UPDATE exportd.webhook_deliveries SET finished_at = now() - interval '31 days' "
            "WHERE job_id = $1",
            job_id,
        )
    store = PgJobStore(pool)
    history = timedelta(days=30).total_seconds()
    if what == "delivery":
        assert await WebhookPurge(store, history).run_once() == 1
        assert await pool.fetchval("SELECT state FROM exportd.jobs WHERE id = $1", job_id)
    else:
        await pool.execute(
            "UPDATE exportd.jobs SET finished_at = now() - interval '31 days' WHERE id = ANY($1)",
            [job_id, waiting],
        )
        assert await Purge(store, history).run_once() == 2
    assert await deliveries(pool, job_id) == []
    assert await pool.fetchval("SELECT count(*) FROM exportd.webhook_attempts") == 0
    pending = await deliveries(pool, waiting)
    assert len(pending) == (1 if what == "delivery" else 0)


async def test_get_job_shows_a_bounded_number_of_deliveries(pool: asyncpg.Pool) -> None:
    # Every terminal change records an event: a job retried again and again
    # (or flipped by an application's UPDATEs) has as many deliveries as it
    # likes, and GET /v1/jobs/{id} listed every one, each with 20 attempts.
    job_id = await insert_job(pool, owner="o", kind="quiet")
    async with pool.acquire() as conn:
        for _ in range(OUTBOX_DELIVERIES_SHOWN + 30):
            await conn.execute("UPDATE exportd.jobs SET state = 'failed' WHERE id = $1", job_id)
            await conn.execute("UPDATE exportd.jobs SET state = 'pending' WHERE id = $1", job_id)
    all_rows = await deliveries(pool, job_id)
    assert len(all_rows) == OUTBOX_DELIVERIES_SHOWN + 30
    shown = await PgJobStore(pool).deliveries(job_id)
    # The last ones, oldest first.
    assert [d["id"] for d in shown] == [r["id"] for r in all_rows[-OUTBOX_DELIVERIES_SHOWN:]]


async def test_a_job_row_python_cannot_read_fails_its_delivery_alone(pool: asyncpg.Pool) -> None:
    # A row the application wrote directly that the driver cannot decode (a
    # created_at before year 1, which no Python datetime holds): decoding it
    # failed the fetch of the whole claimed batch, every event in it waited
    # for its lease and was claimed with the bad one again, for ever. A row
    # whose params hold a number no Python int holds (1e5000) is read, its
    # number as its digits, and delivered like any other.
    good = await cancelled_job(pool)
    big = await insert_job(pool, owner="o", kind="orders")
    await pool.execute(
        "UPDATE exportd.jobs SET params = '{\"n\": 1e5000}'::jsonb WHERE id = $1", big
    )
    assert await pool.fetchval("SELECT exportd.cancel($1)", big)
    bad = await insert_job(pool, owner="o", kind="orders")
    await pool.execute("UPDATE exportd.jobs SET created_at = '0100-01-01 BC' WHERE id = $1", bad)
    assert await pool.fetchval("SELECT exportd.cancel($1)", bad)
    async with receiving([new_secret()]) as receiver:
        started = time.monotonic()
        async with delivering(pool, receiver):
            [good_row] = await settled(pool, good)
            [big_row] = await settled(pool, big)
            [bad_row] = await settled(pool, bad)
            assert time.monotonic() - started < 6
    assert (good_row["state"], big_row["state"]) == ("delivered", "delivered")
    assert bad_row["state"] == "failed"
    assert "cannot read the job" in bad_row["last_error"]
    delivered = {r.payload["data"]["id"]: r.payload["data"] for r in receiver.received}
    assert set(delivered) == {str(good), str(big)}
    assert delivered[str(big)]["params"]["n"] == "1" + "0" * 5000


async def test_without_any_url_an_unreadable_row_is_no_target_too(pool: asyncpg.Pool) -> None:
    # With no URL anywhere the rows are never read: a row Python cannot
    # decode is marked no_target like every other, not failed.
    bad = await insert_job(pool, owner="o", kind="orders")
    await pool.execute(
        "UPDATE exportd.jobs SET params = '{\"n\": 1e5000}'::jsonb WHERE id = $1", bad
    )
    assert await pool.fetchval("SELECT exportd.cancel($1)", bad)
    async with receiving([new_secret()]) as receiver, delivering(pool, receiver, no_urls=True):
        [row] = await settled(pool, bad)
    assert row["state"] == "no_target"
