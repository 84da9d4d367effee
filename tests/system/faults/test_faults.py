"""Fault injection: three `exportd run` processes, one database, one bucket, and trouble.

The daemons work through a few hundred exports of every format, small and
large (several 5 MiB parts), while a schedule drawn from a seed SIGKILLs
some of them mid-upload and restarts them, SIGTERMs others, restarts
Postgres once and cuts S3 off for a while. Rows the main application could
write wrongly are among the jobs. Then, for every job: exactly one terminal
state; each completed object equal to a direct export of its query, with
its checksum and row count; nothing left pending or processing; no
multipart upload left open once maintenance has run; no job completed twice
in the history a trigger of the test's own kept.

The seed is printed and named in every failure:
``EXPORTD_FAULT_SEED=<seed> pytest tests/system/faults/test_faults.py -s`` replays the
schedule. ``EXPORTD_FAULT_PROFILE=long`` runs the longer profile
(docs/faults.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from exportd import database
from exportd.s3.client import open_s3_client
from exportd.s3.objects import list_open_uploads
from tests.support.daemon_process import daemon_env
from tests.support.fault_bad_rows import FAILED, ODD_BUT_LEGAL, insert_statement
from tests.support.fault_checks import (
    TERMINAL,
    DirectExport,
    expected_for,
    history_problems,
    object_problems,
)
from tests.support.fault_fleet import Fleet
from tests.support.fault_schedule import (
    DAEMONS,
    Action,
    Fault,
    JobSpec,
    Profile,
    plan_faults,
    plan_jobs,
    profile_from_env,
    seed_from_env,
)
from tests.support.fault_uploads import (
    MidUploadKills,
    aborts_by,
    cleaned_up_uploads,
    kill_mid_upload,
    mid_upload_problems,
)
from tests.support.fault_world import AUDIT_SQL, DEFINITIONS, SOURCE_SQL
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, free_port, s3_settings
from tests.support.tcp_gate import TcpGate, tcp_gate
from tests.support.throwaway_pg import Cluster, throwaway_cluster

PROFILE = profile_from_env()
MIB = 1024 * 1024
CHECKERS = 8  # completed objects compared with a direct export at once

pytestmark = pytest.mark.timeout(int(PROFILE.window + PROFILE.drain_deadline + 240))


def fleet_settings() -> dict[str, str]:
    """Short leases, reaping, backoff and maintenance: a killed job is reaped
    and retried within seconds, an orphaned upload swept soon after."""
    return {
        "concurrency": "3",
        "lease_seconds": "3",
        "reap_interval": "0.5",
        "backoff_base_seconds": "0.5",
        "backoff_max_seconds": "2",
        "maintenance_interval": "1",
        "orphan_upload_age": "2",
        "storage_failure_threshold": "3",
        "storage_probe_interval": "0.5",
        "shutdown_grace_seconds": "2",
        "s3_part_size": str(5 * MIB),
        "s3_max_export_bytes": str(10_000 * 5 * MIB),
    }


class Run:
    """One run of the suite: its seed, and what it did, for every message."""

    def __init__(self, seed: int, profile: Profile, server: str) -> None:
        self.seed = seed
        self.profile = profile
        self.server = server
        self.started = time.monotonic()
        self.journal: list[str] = []

    def note(self, what: str) -> None:
        line = f"[{time.monotonic() - self.started:7.2f}s] {what}"
        self.journal.append(line)
        print(line, flush=True)

    def replay(self) -> str:
        return (
            f"seed {self.seed} (replay: EXPORTD_FAULT_SEED={self.seed}"
            f" EXPORTD_FAULT_PROFILE={self.profile.name}"
            f" pytest tests/system/faults/test_faults.py -k {self.server} -s)"
        )

    def fail_if(self, problems: list[str], what: str) -> None:
        if problems:
            shown = "\n  ".join(problems[:40])
            more = f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""
            journal = "\n".join(self.journal[-60:])
            pytest.fail(f"{what}, {self.replay()}:\n  {shown}{more}\njournal:\n{journal}")


async def test_daemons_survive_kills_restarts_and_outages(
    s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    seed = seed_from_env()
    run = Run(seed, PROFILE, s3_endpoint.name)
    run.note(f"fault suite: {run.replay()}, profile {PROFILE.name}, server {s3_endpoint.name}")
    bucket = create_bucket(s3_endpoint)
    with throwaway_cluster() as cluster, tcp_gate(s3_endpoint.url) as gate:
        await cluster.migrate()
        setup = await database.connect(cluster.url)
        try:
            await setup.execute(SOURCE_SQL)
            await setup.execute(AUDIT_SQL)
            ids, expected_outcome = await insert_bad_rows(setup)
        finally:
            await setup.close()

        through_gate = S3Endpoint("gate", gate.url, s3_endpoint.access_key, s3_endpoint.secret_key)
        envs = []
        for daemon in range(DAEMONS):
            home = tmp_path / f"d{daemon}"
            home.mkdir()
            envs.append(
                daemon_env(
                    home,
                    DEFINITIONS,
                    cluster.url,
                    through_gate,
                    bucket,
                    free_port(),
                    **fleet_settings(),
                )
            )
        fleet = Fleet(envs, tmp_path)
        kills = MidUploadKills()
        try:
            fleet.start_all()
            await asyncio.gather(
                inflict(plan_faults(seed, PROFILE), fleet, cluster, gate, kills, run),
                enqueue(cluster.url, plan_jobs(seed, PROFILE), ids, expected_outcome, run),
            )
            fleet.start_all()  # whoever is down comes back for the drain
            await drain(cluster.url, ids, fleet, run)
            async with contextlib.AsyncExitStack() as stack:
                direct = await open_s3_client(s3_settings(s3_endpoint, bucket), stack)
                await no_open_uploads(direct, bucket, fleet, run)
            run.fail_if(
                mid_upload_problems(kills, cleaned_up_uploads(fleet.events())),
                "a SIGKILL's open upload was not aborted",
            )
        finally:
            fleet.stop_all()
        run.note("daemons stopped")
        exits = [
            f"daemon {i.daemon} ({i.log_path.name}): {i.ended_by}, status {i.returncode}"
            for i in fleet.history
            if i.ended_by != "sigkill" and i.returncode != 0 and i.started()
        ]
        # A daemon signalled before it started serving (still connecting) dies
        # of the signal: that is fine; one that served must drain and exit 0.
        run.fail_if(exits, "a daemon did not exit 0 after SIGTERM")

        conn = await database.connect(cluster.url)
        try:
            rows = {
                r["id"]: r
                for r in await conn.fetch(
                    "SELECT * FROM exportd.jobs WHERE id = ANY($1::uuid[])", list(ids)
                )
            }
            transitions = await conn.fetch("SELECT * FROM fault_audit.transitions ORDER BY seq")
        finally:
            await conn.close()
        run.note(summary(rows, transitions))
        run.fail_if(outcome_problems(rows, ids, expected_outcome), "jobs did not end as they must")
        final = {job_id: row["state"] for job_id, row in rows.items()}
        run.fail_if(history_problems(transitions, final), "the history is wrong")
        run.fail_if(log_problems(fleet), "the daemons' logs show a problem")
        async with contextlib.AsyncExitStack() as stack:
            direct = await open_s3_client(s3_settings(s3_endpoint, bucket), stack)
            problems = await export_problems(cluster.url, direct, bucket, rows)
        run.fail_if(problems, "completed exports differ from a direct export")
    run.note(f"passed: {run.replay()}")


Outcomes = dict[uuid.UUID, tuple[str, str, tuple[str, ...]]]


async def insert_bad_rows(conn: asyncpg.Connection) -> tuple[list[uuid.UUID], Outcomes]:
    """The rows the table accepts although they are wrong (or odd), and for each the
    outcome it must reach: (state, error_kind, words of the error)."""
    ids: list[uuid.UUID] = []
    outcome: Outcomes = {}
    for bad in FAILED + ODD_BUT_LEGAL:
        sql, args = insert_statement(bad)
        job_id = await conn.fetchval(sql, *args)
        ids.append(job_id)
        outcome[job_id] = (
            ("failed", bad.expect, bad.message) if bad in FAILED else ("completed", "", ())
        )
    return ids, outcome


async def enqueue(
    dsn: str, jobs: list[JobSpec], ids: list[uuid.UUID], outcome: Outcomes, run: Run
) -> None:
    """Insert each planned job at its time, as the application would, through the
    Postgres restart too (an insert that fails is made again a moment later)."""
    t0 = time.monotonic()
    todo = list(jobs)
    while todo:
        due = [j for j in todo if j.at <= time.monotonic() - t0]
        if due:
            inserted: list[uuid.UUID] = []
            try:
                conn = await asyncpg.connect(dsn, timeout=3)
                try:
                    async with conn.transaction():
                        for spec in due:
                            inserted.append(
                                await conn.fetchval(
                                    "INSERT INTO exportd.jobs"
                                    " (owner, kind, params, format, priority, max_attempts)"
                                    " VALUES ($1, $2, $3::text::jsonb, $4, $5, 100) RETURNING id",
                                    spec.owner,
                                    spec.kind,
                                    json.dumps(spec.params),
                                    spec.format,
                                    spec.priority,
                                )
                            )
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                # Postgres is restarting: the transaction inserted nothing. A
                # connection cut mid-statement is an InterfaceError in asyncpg
                # (and so is the transaction's exit on it).
                await asyncio.sleep(0.2)
                continue
            ids.extend(inserted)
            outcome.update((job_id, ("completed", "", ())) for job_id in inserted)
            todo = todo[len(due) :]
        await asyncio.sleep(0.2)
    run.note(f"enqueued {len(ids)} jobs")


async def inflict(
    faults: list[Fault],
    fleet: Fleet,
    cluster: Cluster,
    gate: TcpGate,
    kills: MidUploadKills,
    run: Run,
) -> None:
    """Apply each fault at its time; return once every one has played out."""
    for fault in faults:
        run.note(f"planned: {fault.describe()}")
    t0 = time.monotonic()

    async def apply(fault: Fault) -> None:
        await asyncio.sleep(max(0.0, t0 + fault.at - time.monotonic()))
        if fault.action is Action.SIGKILL:
            assert fault.daemon is not None
            if not fleet.kill(fault.daemon):
                run.note(f"skipped (daemon down): {fault.describe()}")
                return
            run.note(f"SIGKILL daemon {fault.daemon}")
            await asyncio.sleep(fault.duration)
            fleet.start(fault.daemon)
            run.note(f"started daemon {fault.daemon}")
        elif fault.action is Action.SIGKILL_MID_UPLOAD:
            await kill_mid_upload(fault, fleet, cluster.url, kills, run.note)
        elif fault.action is Action.SIGTERM:
            assert fault.daemon is not None
            incarnation = fleet.signal_term(fault.daemon)
            if incarnation is None:
                run.note(f"skipped (daemon down): {fault.describe()}")
                return
            run.note(f"SIGTERM daemon {fault.daemon}")
            await asyncio.to_thread(fleet.wait, incarnation)
            run.note(f"daemon {fault.daemon} exited {incarnation.returncode}")
            await asyncio.sleep(fault.duration)
            fleet.start(fault.daemon)
            run.note(f"started daemon {fault.daemon}")
        elif fault.action is Action.POSTGRES_RESTART:
            run.note(f"stopping Postgres ({fault.mode})")
            await asyncio.to_thread(cluster.stop, fault.mode)
            await asyncio.sleep(fault.duration)
            await asyncio.to_thread(cluster.start)
            run.note("Postgres started")
        elif fault.action is Action.S3_DOWN:
            gate.shut()
            run.note("S3 refuses connections")
            await asyncio.sleep(fault.duration)
            gate.open()
            run.note("S3 listens again")

    await asyncio.gather(*(apply(f) for f in faults))


async def _states(dsn: str, ids: list[uuid.UUID]) -> dict[str, list[uuid.UUID]] | None:
    """Job ids by state; None while the database does not answer."""
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            rows = await conn.fetch(
                "SELECT id, state FROM exportd.jobs WHERE id = ANY($1::uuid[])", ids
            )
        finally:
            await conn.close()
        by_state: dict[str, list[uuid.UUID]] = {}
        for r in rows:
            by_state.setdefault(r["state"], []).append(r["id"])
        return by_state
    return None


async def drain(dsn: str, ids: list[uuid.UUID], fleet: Fleet, run: Run) -> None:
    """Wait until every job is terminal; fail naming the stuck ones at the deadline."""
    deadline = time.monotonic() + run.profile.drain_deadline
    last: dict[str, list[uuid.UUID]] | None = None
    while time.monotonic() < deadline:
        early = fleet.exited_early()
        run.fail_if(
            [f"daemon {i.daemon} exited {i.returncode}; see {i.log_path}" for i in early],
            "a daemon died on its own",
        )
        last = await _states(dsn, ids)
        if last is not None and not (last.keys() - set(TERMINAL)):
            run.note("queue drained: " + ", ".join(f"{s} {len(v)}" for s, v in last.items()))
            return
        await asyncio.sleep(0.5)
    stuck = await stuck_jobs(dsn, ids)
    run.fail_if(
        stuck or [f"states: {last}"],
        f"jobs not finished {run.profile.drain_deadline}s after the faults",
    )


async def stuck_jobs(dsn: str, ids: list[uuid.UUID]) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, state, attempts, worker_id, lease_expires_at, run_after, error_kind, error"
            " FROM exportd.jobs WHERE id = ANY($1::uuid[]) AND state IN ('pending', 'processing')",
            ids,
        )
    finally:
        await conn.close()
    return [
        f"{r['id']} {r['state']} attempt {r['attempts']} worker {r['worker_id']}"
        f" lease {r['lease_expires_at']} run_after {r['run_after']}"
        f" last error {r['error_kind']}: {r['error']}"
        for r in rows
    ]


async def no_open_uploads(s3: Any, bucket: str, fleet: Fleet, run: Run) -> None:
    """Maintenance aborts every upload the faults left open."""
    deadline = time.monotonic() + 30
    uploads: list[Any] = []
    while time.monotonic() < deadline:
        uploads = await list_open_uploads(s3, bucket, "")
        if not uploads:
            by = aborts_by(fleet.events())
            run.note(
                f"no multipart upload open ({by['reaper']} aborted by the reaper,"
                f" {by['sweep']} by the sweep, {by['gone']} found already completed)"
            )
            return
        await asyncio.sleep(0.5)
    run.fail_if(
        [f"{u['Key']} upload {u['UploadId']} initiated {u['Initiated']}" for u in uploads],
        "multipart uploads left open after maintenance ran",
    )


def outcome_problems(
    rows: dict[uuid.UUID, Any],
    ids: list[uuid.UUID],
    expected: dict[uuid.UUID, tuple[str, str, tuple[str, ...]]],
) -> list[str]:
    problems = [f"job {job_id} is missing" for job_id in ids if job_id not in rows]
    for job_id, row in rows.items():
        state, kind, words = expected[job_id]
        if row["state"] != state:
            problems.append(
                f"job {job_id} ({row['kind']} {row['format']} {row['params']}) is"
                f" {row['state']}, expected {state}; attempts {row['attempts']},"
                f" {row['error_kind']}: {row['error']}"
            )
            continue
        if row["state"] == "completed" and (row["upload_id"] or row["lease_expires_at"]):
            problems.append(f"job {job_id} completed but still holds an upload or a lease")
        if state == "failed":
            if row["error_kind"] != kind:
                problems.append(f"job {job_id}: error_kind {row['error_kind']}, expected {kind}")
            missing = [w for w in words if w not in (row["error"] or "")]
            if missing:
                problems.append(f"job {job_id}: error {row['error']!r} does not mention {missing}")
    return problems


def log_problems(fleet: Fleet) -> list[str]:
    """No job reported completed twice; no job crashed the daemon's own code."""
    events = fleet.events()
    completed = Counter(e["job_id"] for e in events if e.get("event") == "job_completed")
    problems = [f"job {j} logged job_completed {n} times" for j, n in completed.items() if n > 1]
    problems += [
        f"{e['_log']}: job_crashed for {e.get('job_id')}: {e.get('exception', '')[-300:]}"
        for e in events
        if e.get("event") == "job_crashed"
    ]
    return problems


async def export_problems(dsn: str, s3: Any, bucket: str, rows: dict[uuid.UUID, Any]) -> list[str]:
    """Each completed job's object against a direct export of the same query,
    CHECKERS at a time (each with a connection of its own)."""
    todo = [(job_id, row) for job_id, row in rows.items() if row["state"] == "completed"]
    problems: list[str] = []

    async def checker() -> None:
        async with DirectExport(dsn) as direct:
            while todo:
                job_id, row = todo.pop()
                response = await s3.get_object(Bucket=bucket, Key=row["object_key"])
                async with response["Body"] as stream:
                    body = await stream.read()
                expected = await expected_for(direct, row)
                # The comparison is CPU work: off the loop, so the others' reads go on.
                found = await asyncio.to_thread(object_problems, row, body, expected)
                problems.extend(f"job {job_id} ({row['kind']} {row['format']}): {p}" for p in found)

    await asyncio.gather(*(checker() for _ in range(CHECKERS)))
    return problems


def summary(rows: dict[uuid.UUID, Any], transitions: list[Any]) -> str:
    states = Counter(r["state"] for r in rows.values())
    attempts = Counter(r["attempts"] for r in rows.values())
    kinds = Counter(r["error_kind"] for r in rows.values() if r["state"] == "completed")
    return (
        f"jobs by state {dict(states)}; attempts {dict(sorted(attempts.items()))};"
        f" last errors of completed jobs {dict(kinds)}; {len(transitions)} transitions"
    )
