"""Caller strings that reach system limits, and rows that make a batch statement fail.

Against real Postgres: the byte bounds of migration 0004 and its upgrade of a
table already holding rows over them, notifications that fit whatever a row
holds, params decoded per job, batch statements that isolate a bad row, and
outcomes guarded on the owner as claimed.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from exportd import limits
from exportd.errors import ErrorKind, ExportError
from exportd.export.interface import JobContext
from exportd.limits import json_depth
from exportd.maintenance.purge import Purge
from exportd.maintenance.reaper import Reaper
from exportd.maintenance.retention import Retention
from exportd.queue.backoff import BackoffPolicy
from exportd.queue.job import ExportResult, Heartbeat, UploadRef
from exportd.queue.migrations import migrate
from exportd.queue.postgres import PgJobStore
from exportd.queue.sql import migrations, queries
from exportd.worker.loop import Worker, WorkerConfig
from tests.support.helpers import eventually, insert_job

LEASE = 30.0
BOUNDS = {
    "jobs_owner_bytes": ("owner", limits.OWNER_MAX_BYTES),
    "jobs_kind_bytes": ("kind", limits.KIND_MAX_BYTES),
    "jobs_dedupe_key_bytes": ("dedupe_key", limits.DEDUPE_KEY_MAX_BYTES),
    "jobs_params_bytes": ("params::text", limits.PARAMS_MAX_BYTES),
}
# 1,200 levels: Postgres stores it, Python's json raises RecursionError on it.
POISON = '{"a": ' * 1200 + "1" + "}" * 1200


async def state_of(pool: asyncpg.Pool, job_id: uuid.UUID) -> asyncpg.Record:
    """The daemon-written columns of a row, params left out (they may not decode)."""
    row: asyncpg.Record = await pool.fetchrow(
        "SELECT state, error_kind, error, worker_id, attempts, owner, object_key, filename"
        " FROM exportd.jobs WHERE id = $1",
        job_id,
    )
    return row


async def raise_on_update(pool: asyncpg.Pool, job_id: uuid.UUID, when: str = "true") -> None:
    """An application trigger that refuses, for one row, every update matching ``when``."""
    await pool.execute(
        "CREATE FUNCTION public.refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN IF NEW.id = '{job_id}' AND ({when}) THEN"
        " RAISE EXCEPTION 'refused by the application for %', NEW.id; END IF;"
        " RETURN NEW; END $$;"
        " CREATE TRIGGER refuse_one BEFORE UPDATE ON exportd.jobs"
        " FOR EACH ROW EXECUTE FUNCTION public.refuse_one()"
    )


# --- the bounds -------------------------------------------------------------


def test_the_migration_uses_the_numbers_of_limits() -> None:
    [bounds] = [m for m in migrations() if m.name == "bounds"]
    for constraint, (column, limit) in BOUNDS.items():
        found = re.search(
            rf"{constraint}\s+CHECK \(octet_length\({re.escape(column)}\) <= (\d+)", bounds.sql
        )
        assert found, constraint
        assert int(found.group(1)) == limit, constraint
        # The upgrade's own checks name the same number.
        assert f"octet_length({column}) > {limit}" in bounds.sql
    assert f"octet_length(NEW.owner) > {limits.OWNER_MAX_BYTES}" in bounds.sql
    assert f"octet_length(NEW.kind) > {limits.KIND_MAX_BYTES}" in bounds.sql
    depth = f"jsonb_path_exists(params, 'strict $.**{{{limits.JSON_MAX_DEPTH} to last}}')"
    assert bounds.sql.count(depth) == 3  # the constraint and the upgrade's two checks


def _nested(depth: int, inner: str) -> str:
    """Params nesting ``depth`` levels in all (their object is the first) around ``inner``."""
    return '{"p": ' + "[" * (depth - 1) + inner + "]" * (depth - 1) + "}"


@pytest.mark.parametrize(
    ("document", "taken"),
    [
        (_nested(limits.JSON_MAX_DEPTH - 1, "1"), True),
        (_nested(limits.JSON_MAX_DEPTH, ""), True),
        (_nested(limits.JSON_MAX_DEPTH, "1"), False),
        (_nested(limits.JSON_MAX_DEPTH + 1, ""), False),
        (_nested(1200, ""), False),
    ],
)
async def test_params_nested_past_the_bound_are_refused_by_name(
    pool: asyncpg.Pool, document: str, taken: bool
) -> None:
    # Whatever the table takes decodes within the daemon's own bound.
    params = document
    insert = "INSERT INTO exportd.jobs (owner, kind, params) VALUES ('u', 'k', $1::text::jsonb)"
    if taken:
        await pool.execute(insert, params)
        assert json_depth(params) <= limits.JSON_MAX_DEPTH
    else:
        with pytest.raises(asyncpg.CheckViolationError, match="jobs_params_depth"):
            await pool.execute(insert, params)


@pytest.mark.parametrize("constraint", sorted(BOUNDS))
async def test_each_bound_is_in_bytes_and_refused_by_name(
    pool: asyncpg.Pool, constraint: str
) -> None:
    column, limit = BOUNDS[constraint]

    def row(size: int) -> dict[str, object]:
        # Two-byte characters: a limit in characters would let twice as much in.
        text = "é" * (size // 2) + "x" * (size % 2)
        values: dict[str, object] = {"owner": "u", "kind": "k", "dedupe_key": None, "params": {}}
        if column == "params::text":
            # {"p": "…"} is 9 bytes around the text.
            values["params"] = {"p": "é" * ((size - 9) // 2) + "x" * ((size - 9) % 2)}
        else:
            values[column] = text
        return values

    insert = (
        "INSERT INTO exportd.jobs (owner, kind, dedupe_key, params)"
        " VALUES ($1, $2, $3, $4::jsonb) RETURNING octet_length(params::text)"
    )
    at = row(limit)
    await pool.fetchval(insert, at["owner"], at["kind"], at["dedupe_key"], at["params"])
    over = row(limit + 1)
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await pool.fetchval(insert, over["owner"], over["kind"], over["dedupe_key"], over["params"])
    assert constraint in str(refused.value)


async def migrated_to(url: str, version: int) -> asyncpg.Connection:
    """A connection to the database at ``url``, migrated up to ``version`` only."""
    conn = await asyncpg.connect(url)
    q = queries()
    await conn.execute(q["migrate_bootstrap"])
    for m in migrations():
        if m.version <= version:
            await conn.execute(m.sql)
            await conn.execute(q["migration_record"], m.version, m.name)
    return conn


@pytest.fixture
async def at_0003(empty_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A database migrated to version 3, as before the bounds."""
    conn = await migrated_to(empty_database, 3)
    yield conn
    await conn.close()


async def test_an_upgrade_over_rows_past_the_bounds_never_wedges(
    at_0003: asyncpg.Connection,
) -> None:
    conn = at_0003
    huge = "o" * 9000
    insert = (
        "INSERT INTO exportd.jobs (owner, kind, state, worker_id, lease_expires_at,"
        " finished_at, expires_at, object_key, params)"
        " VALUES ($1, $2, $3, $4, $5, now() - interval '100 days', now() - interval '1 day',"
        " $6, $7::jsonb) RETURNING id"
    )
    pending = await conn.fetchval(insert, huge, "k", "pending", None, None, None, "{}")
    lease = datetime.now(UTC) + timedelta(hours=1)
    running = await conn.fetchval(insert, "u", "k" * 9000, "processing", "w1", lease, None, "{}")
    big_params = await conn.fetchval(
        insert, "u", "k", "pending", None, None, None, json.dumps({"p": "x" * 70000})
    )
    # Terminal rows over the bounds could not even be written with 0003's
    # notification; they can be restored from a backup, say.
    await conn.execute("ALTER TABLE exportd.jobs DISABLE TRIGGER jobs_notify_event")
    completed = await conn.fetchval(insert, huge, "k", "completed", None, None, "exports/x", "{}")
    failed = await conn.fetchval(insert, huge, huge, "failed", None, None, None, "{}")
    await conn.execute("ALTER TABLE exportd.jobs ENABLE TRIGGER jobs_notify_event")
    fine = await conn.fetchval(insert, "u", "k", "pending", None, None, None, "{}")

    # Every later migration applies over these rows too.
    assert [m.version for m in await migrate(conn)] == [m.version for m in migrations()][3:]

    for job_id, what in [
        (pending, "owner is 9000 bytes, over the 256 allowed"),
        (running, "kind is 9000 bytes, over the 128 allowed"),
        (big_params, "params are 70009 bytes as JSON text, over the 65536 allowed"),
    ]:
        row = await conn.fetchrow(
            "SELECT state, error_kind, error, lease_expires_at FROM exportd.jobs WHERE id = $1",
            job_id,
        )
        assert (row["state"], row["error_kind"]) == ("failed", "invalid_params")
        assert row["error"] == f"failed on upgrade: {what}"
        assert row["lease_expires_at"] is None
    assert await conn.fetchval("SELECT state FROM exportd.jobs WHERE id = $1", fine) == "pending"
    # The terminal rows keep their values and stay expirable and purgeable.
    q = queries()
    assert await conn.fetch(q["retention_expire"], [completed]) != []
    assert await conn.fetch(q["purge_delete"], [failed]) != []
    # And a live row over a bound is refused from now on.
    with pytest.raises(asyncpg.CheckViolationError, match="jobs_owner_bytes"):
        await conn.execute("INSERT INTO exportd.jobs (owner, kind) VALUES ($1, 'k')", huge)


# --- run_after --------------------------------------------------------------

# Postgres stores timestamps from 4713 BC to 294276 AD; every reader of a row
# (the API, the CLI) decodes them into Python's years 1 to 9999.
RUN_AFTER_REFUSED = [
    "10000-01-01 00:00:00+00",
    "294276-12-31 23:59:59+00",
    "4713-01-01 00:00:00+00 BC",
    "0001-01-01 00:00:00+01",  # 0000-12-31 at UTC
]
RUN_AFTER_TAKEN = [
    "infinity",
    "-infinity",
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "9999-12-31 23:59:59-14",  # 10000-01-01 09:59:59 at UTC: refused
]


def test_the_run_after_bounds_use_the_numbers_of_limits() -> None:
    [run_after] = [m for m in migrations() if m.name == "run_after_range"]
    low = f"run_after >= '{limits.RUN_AFTER_MIN_ISO}'"
    high = f"run_after < '{limits.RUN_AFTER_END_ISO}'"
    # The constraint and the upgrade's clamping name the same instants, and no other.
    assert run_after.sql.count(low) == 2
    assert run_after.sql.count(high) == 2
    instants = set(re.findall(r"'(\d{4,}-[^']*)'", run_after.sql))
    assert instants == {limits.RUN_AFTER_MIN_ISO, limits.RUN_AFTER_END_ISO}


@pytest.mark.parametrize("value", RUN_AFTER_REFUSED + RUN_AFTER_TAKEN)
async def test_run_after_is_refused_by_name_where_no_reader_could_decode_it(
    pool: asyncpg.Pool, value: str
) -> None:
    insert = (
        "INSERT INTO exportd.jobs (owner, kind, run_after) VALUES ('u', 'k', $1::text::timestamptz)"
        " RETURNING id"
    )
    function = "SELECT exportd.enqueue('u', 'k', '{}', 'csv', 0::smallint, $1::text::timestamptz)"
    decodable = not (value in RUN_AFTER_REFUSED or value.endswith("-14"))
    if decodable:
        job_id = await pool.fetchval(insert, value)
        # Every reader of the row decodes it: the API and the CLI read it whole.
        row = await pool.fetchrow(queries()["get_job"], job_id)
        assert row["run_after"] is not None
        await pool.fetchval(function, value)
        return
    for statement in (insert, function):
        with pytest.raises(asyncpg.CheckViolationError, match="jobs_run_after_range"):
            await pool.fetchval(statement, value)


@pytest.fixture
async def at_0004(empty_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A database migrated to version 4, as before run_after was bounded."""
    conn = await migrated_to(empty_database, 4)
    yield conn
    await conn.close()


async def test_an_upgrade_clamps_run_after_no_reader_could_decode(
    at_0004: asyncpg.Connection,
) -> None:
    conn = at_0004
    insert = (
        "INSERT INTO exportd.jobs (owner, kind, state, finished_at, run_after)"
        " VALUES ('u', 'k', $1, $2, $3::text::timestamptz) RETURNING id"
    )
    far = await conn.fetchval(insert, "pending", None, "10000-01-01 00:00:00+00")
    old = await conn.fetchval(insert, "failed", datetime.now(UTC), "4713-01-01 00:00:00+00 BC")
    fine = await conn.fetchval(insert, "pending", None, "2030-01-01 00:00:00+00")

    assert [m.version for m in await migrate(conn)] == [m.version for m in migrations()][4:]

    def read(job_id: uuid.UUID) -> Any:
        # The whole row, as the API and the CLI read it: no column may fail to decode.
        return conn.fetchrow(queries()["get_job"], job_id)

    # Past the end means never, before the start means as soon as possible: the
    # same meaning, in values every reader decodes.
    assert await conn.fetchval("SELECT run_after = 'infinity' FROM exportd.jobs WHERE id = $1", far)
    assert (await read(far))["state"] == "pending"
    assert await conn.fetchval(
        "SELECT run_after = '-infinity' FROM exportd.jobs WHERE id = $1", old
    )
    assert (await read(old))["state"] == "failed"
    assert (await read(fine))["run_after"] == datetime(2030, 1, 1, tzinfo=UTC)


# --- notifications ----------------------------------------------------------


@pytest.fixture
async def unbounded(pool: asyncpg.Pool) -> None:
    """The table as it was before the bounds, for owners and kinds (rows from then)."""
    await pool.execute(
        "ALTER TABLE exportd.jobs DROP CONSTRAINT jobs_owner_bytes, DROP CONSTRAINT jobs_kind_bytes"
    )


@pytest.mark.usefixtures("unbounded")
async def test_an_8000_byte_owner_and_kind_never_wedge_the_queue(
    pool: asyncpg.Pool, dsn: str
) -> None:
    owner, kind = "🎉" * 2100, "k" * 8100  # 8,400 and 8,100 bytes
    events: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(dsn)
    await listener.add_listener("exportd_events", lambda *a: events.put_nowait(a[3]))
    done = await insert_job(pool, owner=owner, kind=kind)
    cancelled = await insert_job(pool, owner=owner, kind=kind)
    reaped = await insert_job(pool, owner=owner, kind=kind, max_attempts=1)
    normal = await insert_job(pool, max_attempts=1)
    store = PgJobStore(pool)
    try:
        jobs = {j.id: j for j in await store.claim("w1", 10, LEASE)}
        assert set(jobs) == {done, cancelled, reaped, normal}

        async def commit() -> ExportResult:
            return ExportResult("k", 1, 1, "0" * 64)

        result = await store.complete(jobs[done], "w1", 3600, LEASE, commit)
        assert result is not None
        assert (await state_of(pool, done))["state"] == "completed"
        assert await pool.fetchval("SELECT exportd.cancel($1)", cancelled) is True
        await pool.execute(
            "UPDATE exportd.jobs SET lease_expires_at = now() - interval '1 second'"
            " WHERE id = ANY($1::uuid[])",
            [reaped, normal],
        )
        assert {r.job_id for r in await Reaper(PgJobStore(pool), BackoffPolicy()).run_once()} == {
            reaped,
            normal,
        }
        payloads = [await asyncio.wait_for(events.get(), 5) for _ in range(4)]
    finally:
        await listener.close()
    for raw in payloads:
        assert len(raw.encode("utf-8")) < limits.NOTIFY_MAX_BYTES
    by_state = {json.loads(p)["state"]: json.loads(p) for p in payloads if owner[:64] in p}
    assert set(by_state) == {"completed", "cancelled", "failed"}
    for payload in by_state.values():
        assert payload["owner"] == owner[:64]
        assert payload["kind"] == kind[:64]
        assert payload["truncated"] == ["owner", "kind"]
    [plain] = [json.loads(p) for p in payloads if owner[:64] not in p]
    assert plain == {"id": str(normal), "owner": "user_1", "kind": "orders", "state": "failed"}


# --- params decoded per job -------------------------------------------------


@dataclass
class _Done:
    key: str

    async def commit(self) -> ExportResult:
        return ExportResult(self.key, 1, 1, "0" * 64)

    async def abort(self) -> None:
        return None


class _Runner:
    """Runs any job at once (the worker's Runner boundary; the queue is real)."""

    def __init__(self) -> None:
        self.ran: list[uuid.UUID] = []

    async def run(self, ctx: JobContext) -> _Done:
        self.ran.append(ctx.job.id)
        assert ctx.job.params == {"n": 1}
        return _Done(f"k/{ctx.job.id}")


async def test_a_row_whose_params_cannot_be_decoded_fails_alone(pool: asyncpg.Pool) -> None:
    good = [await insert_job(pool, params={"n": 1}) for _ in range(3)]
    # The table refuses such params now (jobs_params_depth); a row written
    # before that bound, or by a role that dropped it, must still fail alone.
    await pool.execute("ALTER TABLE exportd.jobs DROP CONSTRAINT jobs_params_depth")
    poison = await pool.fetchval(
        "INSERT INTO exportd.jobs (owner, kind, params) VALUES ('u', 'orders', $1::text::jsonb)"
        " RETURNING id",
        POISON,
    )
    # Python's own decoder cannot take it: this is the row that used to fail a claim.
    with pytest.raises(RecursionError):
        json.loads(POISON)
    store = PgJobStore(pool)
    runner = _Runner()
    worker = Worker(store, runner, WorkerConfig(concurrency=8, poll_interval=0.05))
    running = asyncio.create_task(worker.run(grace_seconds=5))
    try:

        async def settled() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM exportd.jobs WHERE state IN ('completed', 'failed')"
            )
            return bool(n == 4)

        await eventually(settled, timeout=10)
    finally:
        worker.request_stop()
        await running
    assert sorted(runner.ran) == sorted(good), "every good job of the claim ran"
    for job_id in good:
        assert (await state_of(pool, job_id))["state"] == "completed"
    row = await state_of(pool, poison)
    assert (row["state"], row["error_kind"]) == ("failed", "invalid_params")
    assert row["error"] == (
        f"params nest 1,200 levels deep, over the {limits.JSON_MAX_DEPTH} allowed;"
        " send a flatter document and enqueue again"
    )
    assert row["attempts"] == 1


# --- one bad row never fails a batch ----------------------------------------


async def test_the_reaper_isolates_a_row_that_refuses_its_update(pool: asyncpg.Pool) -> None:
    ids = [await insert_job(pool) for _ in range(4)]
    await PgJobStore(pool).claim("dead", 4, LEASE)
    await pool.execute("UPDATE exportd.jobs SET lease_expires_at = now() - interval '1 second'")
    bad = ids[1]
    await raise_on_update(pool, bad)
    reaper = Reaper(PgJobStore(pool), BackoffPolicy())
    with capture_logs() as logs:
        first = await reaper.run_once()
        second = await reaper.run_once()
    assert sorted(r.job_id for r in first) == sorted(i for i in ids if i != bad)
    assert second == [], "the bad row is passed over, not retried every round"
    [event] = [e for e in logs if e["event"] == "job_unreapable"]
    assert event["job_id"] == str(bad)
    assert "refused by the application" in event["error"]
    assert (await state_of(pool, bad))["state"] == "processing"
    for job_id in ids:
        if job_id != bad:
            assert (await state_of(pool, job_id))["state"] == "pending"


async def test_the_completion_batch_isolates_a_row_that_refuses_its_update(
    pool: asyncpg.Pool,
) -> None:
    for _ in range(3):
        await insert_job(pool)
    store = PgJobStore(pool)
    jobs = await store.claim("w1", 3, LEASE)
    bad = jobs[1]
    await raise_on_update(pool, bad.id, "NEW.state = 'completed'")

    def commit_of(job_id: uuid.UUID) -> Any:
        async def commit() -> ExportResult:
            return ExportResult(f"k/{job_id}", 1, 1, "0" * 64, f"name-{job_id}.csv")

        return commit

    with capture_logs() as logs:
        outcomes = await asyncio.gather(
            *(store.complete(j, "w1", 3600, LEASE, commit_of(j.id)) for j in jobs),
            return_exceptions=True,
        )
    assert isinstance(outcomes[0], ExportResult)
    assert isinstance(outcomes[2], ExportResult)
    assert isinstance(outcomes[1], ExportError)
    assert outcomes[1].kind is ErrorKind.INTERNAL
    assert "refused by the application" in outcomes[1].message
    assert [e["job_id"] for e in logs if e["event"] == "completion_refused"] == [str(bad.id)]
    for j in (jobs[0], jobs[2]):
        row = await state_of(pool, j.id)
        assert (row["state"], row["filename"]) == ("completed", f"name-{j.id}.csv")
    row = await state_of(pool, bad.id)
    assert (row["state"], row["worker_id"]) == ("processing", "w1")


async def test_the_claim_isolates_a_row_that_refuses_it(pool: asyncpg.Pool) -> None:
    ids = [await insert_job(pool, priority=p) for p in (3, 2, 1)]
    refused_claim, stuck = ids[0], ids[1]
    # The first refuses only the claim (it can still be failed); the second
    # refuses every update (it can only be passed over).
    await raise_on_update(pool, refused_claim, "NEW.state = 'processing'")
    await pool.execute(
        "CREATE FUNCTION public.refuse_all() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN IF NEW.id = '{stuck}' THEN RAISE EXCEPTION 'never'; END IF;"
        " RETURN NEW; END $$;"
        " CREATE TRIGGER refuse_all BEFORE UPDATE ON exportd.jobs"
        " FOR EACH ROW EXECUTE FUNCTION public.refuse_all()"
    )
    store = PgJobStore(pool)
    with capture_logs() as logs:
        claimed = await store.claim("w1", 5, LEASE)
    assert [j.id for j in claimed] == [ids[2]]
    row = await state_of(pool, refused_claim)
    assert (row["state"], row["error_kind"]) == ("failed", "internal")
    assert row["error"].startswith("the job could not be claimed: RaiseError: refused by the")
    assert (await state_of(pool, stuck))["state"] == "pending"
    events = {e["job_id"]: e for e in logs if e["event"] == "job_unclaimable"}
    assert events[str(stuck)]["passed_over"] is True
    assert events[str(refused_claim)]["failed"] is True
    # The next claim passes over the stuck row and takes new work at once.
    later = await insert_job(pool)
    assert [j.id for j in await store.claim("w1", 5, LEASE)] == [later]


async def test_a_heartbeat_isolates_a_row_that_refuses_its_renewal(pool: asyncpg.Pool) -> None:
    for _ in range(3):
        await insert_job(pool)
    store = PgJobStore(pool)
    jobs = await store.claim("w1", 3, LEASE)
    await raise_on_update(pool, jobs[0].id)
    beats = [Heartbeat(j.id, j.claim, j.owner, 1, 1, 1) for j in jobs]
    assert await store.heartbeat("w1", LEASE, beats) == {jobs[1].id, jobs[2].id}


async def test_retention_and_purge_isolate_a_row_that_refuses(pool: asyncpg.Pool) -> None:
    ids = [await insert_job(pool) for _ in range(3)]
    await pool.execute(
        "UPDATE exportd.jobs SET state = 'completed', expires_at = now() - interval '1 second',"
        " finished_at = now() - interval '1 day', object_key = 'k/' || id"
    )
    await raise_on_update(pool, ids[0])
    deleted: list[str] = []

    async def delete(key: str) -> None:
        deleted.append(key)

    retention = Retention(PgJobStore(pool), delete)
    assert await retention.run_once() == 2
    assert await retention.run_once() == 0
    assert {(await state_of(pool, i))["state"] for i in ids[1:]} == {"expired"}
    await pool.execute(
        "CREATE FUNCTION public.keep() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN IF OLD.id = '{ids[1]}' THEN RAISE EXCEPTION 'kept'; END IF;"
        " RETURN OLD; END $$;"
        " CREATE TRIGGER keep BEFORE DELETE ON exportd.jobs"
        " FOR EACH ROW EXECUTE FUNCTION public.keep();"
        " UPDATE exportd.jobs SET finished_at = now() - interval '30 days'"
        " WHERE state = 'expired'"
    )
    purge = Purge(PgJobStore(pool), 86400)
    assert await purge.run_once() == 1
    assert await purge.run_once() == 0
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 2


# --- outcomes guarded on the owner ------------------------------------------


async def test_an_owner_changed_while_the_job_runs_loses_the_job(pool: asyncpg.Pool) -> None:
    job_id = await insert_job(pool, owner="alice")
    store = PgJobStore(pool)
    [job] = await store.claim("w1", 1, LEASE)
    await pool.execute("UPDATE exportd.jobs SET owner = 'mallory' WHERE id = $1", job_id)
    committed: list[str] = []

    async def commit() -> ExportResult:
        committed.append("alice's export")
        return ExportResult("exports/alice/x", 1, 1, "0" * 64)

    assert await store.complete(job, "w1", 3600, LEASE, commit) is None
    assert committed == [], "no object is committed for a job that is no longer alice's"
    assert await store.heartbeat("w1", LEASE, [Heartbeat(job.id, 1, "alice", 0, 0, 0)]) == set()
    state = await store.state_of(job_id)
    assert state is not None
    assert not state.held_by("w1", 1, "alice")
    assert not await store.record_upload(job, "w1", UploadRef("u", "exports/alice/x"))
    assert await store.retry(job, "w1", 1, "x", ErrorKind.INTERNAL) is None
    assert not await store.fail(job, "w1", "x", ErrorKind.INTERNAL)
    assert await store.release(job, "w1") is None
    row = await state_of(pool, job_id)
    assert (row["state"], row["owner"], row["object_key"]) == ("processing", "mallory", None)
    # The reaper hands it back once the lease runs out: it runs for mallory then.
    await pool.execute(
        "UPDATE exportd.jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        job_id,
    )
    assert [r.state for r in await Reaper(PgJobStore(pool), BackoffPolicy()).run_once()] == [
        "pending"
    ]


async def test_an_outage_in_the_row_by_row_claim_leaves_no_row_claimed_unseen(
    pool: asyncpg.Pool,
) -> None:
    """A claim that fails as a whole is retried row by row; an outage in the middle
    of that retry must not leave the rows claimed before it in ``processing`` with
    no worker knowing of them (they would wait out their lease and be charged an
    attempt as ``lease_expired``)."""
    first, refused, last = [await insert_job(pool, priority=p) for p in (3, 2, 1)]
    await raise_on_update(pool, refused, "NEW.state = 'processing'")
    # The last row's claim, alone, meets a serialization failure: an outage,
    # which the row-by-row retry raises as it is.
    await pool.execute(
        "CREATE FUNCTION public.fail_alone() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN IF EXISTS (SELECT 1 FROM claimed WHERE id = '{last}')"
        " AND (SELECT count(*) FROM claimed) = 1 THEN"
        " RAISE EXCEPTION 'could not serialize' USING ERRCODE = '40001'; END IF;"
        " RETURN NULL; END $$;"
        " CREATE TRIGGER fail_alone AFTER UPDATE ON exportd.jobs"
        " REFERENCING NEW TABLE AS claimed"
        " FOR EACH STATEMENT EXECUTE FUNCTION public.fail_alone()"
    )
    store = PgJobStore(pool)
    with pytest.raises(asyncpg.SerializationError):
        await store.claim("w1", 5, LEASE)
    for job_id in (first, refused, last):
        row = await state_of(pool, job_id)
        assert (row["state"], row["worker_id"], row["attempts"]) == ("pending", None, 0)
    # Once the outage is over, the claim takes what it can at once.
    await pool.execute("DROP TRIGGER fail_alone ON exportd.jobs")
    claimed = await store.claim("w1", 5, LEASE)
    assert sorted(j.id for j in claimed) == sorted([first, last])
    assert (await state_of(pool, refused))["state"] == "failed"


@pytest.mark.parametrize(
    "document",
    [
        {"amounts": [1e300, 1.5e-07, -2.5e-300, 0.1, 1e16, 3.0, 10**40]},
        {"text": '\u00e9\n"\\', "none": None, "yes": True, "nested": [{}, [], {"x": [1]}]},
        {"tiny": 5e-324, "huge": 1.7976931348623157e308},
    ],
)
async def test_the_api_measures_a_document_as_the_tables_check_does(
    pool: asyncpg.Pool, document: dict[str, Any]
) -> None:
    """limits.jsonb_text_bytes, by which the API and the options bound params and
    options, is octet_length of the jsonb's text, numbers written in full."""
    measured = await pool.fetchval(
        "SELECT octet_length($1::text::jsonb::text)", json.dumps(document)
    )
    assert limits.jsonb_text_bytes(document) == measured
