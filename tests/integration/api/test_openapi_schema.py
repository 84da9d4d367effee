"""schemathesis against a whole daemon (real Postgres, real S3): requests generated from
the OpenAPI document, answers checked against it. No 5xx, every answer as described.

The daemon runs in a thread with its own event loop, because schemathesis calls
the API synchronously from the test. The number of examples per operation is
bounded so the run stays within seconds; set EXPORTD_SCHEMATHESIS_EXAMPLES to
search longer.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import positive_data_acceptance

from exportd.api.openapi import openapi_document
from tests.conftest import _admin, database_url
from tests.support.daemon_harness import FAST, running_daemon
from tests.support.fixtures_api import AUTH, KINDS
from tests.support.fixtures_s3 import S3Endpoint, create_bucket, s3_settings

EXAMPLES = int(os.environ.get("EXPORTD_SCHEMATHESIS_EXAMPLES", "30"))


@dataclass(frozen=True)
class Served:
    url: str
    dsn: str


@pytest.fixture(scope="module")
def served(admin_url: str, template_database: str, rclone_server: S3Endpoint) -> Iterator[Served]:
    """A daemon on its own database and bucket for the module."""
    name = f"exportd_schema_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_url, f"CREATE DATABASE {name} TEMPLATE {template_database}"))
    settings_ = s3_settings(
        rclone_server,
        create_bucket(rclone_server),
        database_url=database_url(admin_url, name),
        **FAST,
    )
    started = threading.Event()
    state: dict[str, Any] = {}

    async def run() -> None:
        async with running_daemon(settings_, KINDS) as daemon:
            stop = asyncio.Event()
            state.update(port=daemon.api_port, loop=asyncio.get_running_loop(), stop=stop)
            started.set()
            await stop.wait()

    def thread_main() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # reported to the test, not lost in the thread
            state["error"] = exc
            started.set()

    thread = threading.Thread(target=thread_main, name="exportd-schema-daemon")
    thread.start()
    started.wait(60)
    try:
        if "error" in state:
            raise state["error"]
        yield Served(f"http://127.0.0.1:{state['port']}", database_url(admin_url, name))
    finally:
        if "stop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(60)
        asyncio.run(_admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


# Every check but one: schema-valid requests may still be refused with 400 where
# OpenAPI cannot say what makes them valid (an owner is required unless the
# request has an owner scope; params must fit the kind's own schema, which
# GET /v1/kinds serves). Server errors and answers unlike the document fail.
def _operations() -> list[Any]:
    schema = schemathesis.openapi.from_dict(openapi_document())
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is wrong
        operations.append(result.ok())
    return operations


OPERATIONS = _operations()


def _validate(case: Any, base_url: str) -> Any:
    return case.call_and_validate(
        base_url=base_url, headers=AUTH, excluded_checks=[positive_data_acceptance]
    )


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_every_answer_matches_the_document(operation: Any, served: Served) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        _validate(case, served.url)

    check()


async def _seed(dsn: str) -> dict[str, str]:
    """A job in each state a job route answers differently for (the worker leaves them
    alone: they are not ready, or already over)."""
    conn = await asyncpg.connect(dsn)
    try:
        ids = {}
        for state in ("pending", "completed", "expired", "failed"):
            ids[state] = str(
                await conn.fetchval(
                    "INSERT INTO exportd.jobs (owner, kind, state, run_after, object_key,"
                    " expires_at, finished_at)"
                    " VALUES ('u1', 'everything', $1, now() + interval '1 day',"
                    " CASE WHEN $1 IN ('completed', 'expired') THEN 'exports/u1/x/f.csv' END,"
                    " now() + interval '1 day', CASE WHEN $1 <> 'pending' THEN now() END)"
                    " RETURNING id",
                    state,
                )
            )
        return ids
    finally:
        await conn.close()


def test_answers_about_real_jobs_match_the_document(served: Served) -> None:
    """Random ids are all unknown: here every job route meets jobs that exist."""
    ids = asyncio.run(_seed(served.dsn))
    by_label = {op.label: op for op in OPERATIONS}
    seen = set()
    for label in (
        "GET /v1/jobs/{id}",
        "GET /v1/jobs/{id}/download",
        "DELETE /v1/jobs/{id}",
        # After DELETE: the pending job is cancelled by then, the completed one expired.
        "POST /v1/jobs/{id}/retry",
    ):
        for job_id in ids.values():
            case = by_label[label].Case(path_parameters={"id": job_id})
            seen.add((label, _validate(case, served.url).status_code))
    listing = by_label["GET /v1/jobs"].Case(query={"owner": "u1", "limit": 2})
    seen.add(("GET /v1/jobs", _validate(listing, served.url).status_code))
    assert seen >= {
        ("GET /v1/jobs/{id}", 200),
        ("GET /v1/jobs/{id}/download", 302),
        ("GET /v1/jobs/{id}/download", 409),
        ("GET /v1/jobs/{id}/download", 410),
        ("DELETE /v1/jobs/{id}", 200),
        ("DELETE /v1/jobs/{id}", 409),
        ("POST /v1/jobs/{id}/retry", 202),
        ("POST /v1/jobs/{id}/retry", 409),
        ("GET /v1/jobs", 200),
    }


def test_answers_about_real_schedules_match_the_document(served: Served) -> None:
    """A schedule created, read, listed, changed and deleted: each answer as described."""
    by_label = {op.label: op for op in OPERATIONS}
    body = {"owner": "u1", "kind": "everything", "cron": "0 8 * * 1", "timezone": "Europe/Zurich"}
    created = _validate(by_label["POST /v1/schedules"].Case(body=body), served.url)
    assert created.status_code == 201, created.text
    path = {"id": created.json()["id"]}
    seen = [
        _validate(by_label["GET /v1/schedules/{id}"].Case(path_parameters=path), served.url),
        _validate(by_label["GET /v1/schedules"].Case(query={"owner": "u1"}), served.url),
        _validate(
            by_label["PATCH /v1/schedules/{id}"].Case(
                path_parameters=path, body={"cron": "@daily", "enabled": False}
            ),
            served.url,
        ),
        _validate(by_label["DELETE /v1/schedules/{id}"].Case(path_parameters=path), served.url),
        _validate(by_label["GET /v1/schedules/{id}"].Case(path_parameters=path), served.url),
    ]
    assert [r.status_code for r in seen] == [200, 200, 200, 204, 404]
