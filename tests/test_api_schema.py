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
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import positive_data_acceptance

from exportd.openapi import openapi_document
from tests.conftest import _admin, database_url
from tests.daemon_harness import FAST, running_daemon
from tests.fixtures_api import AUTH, KINDS
from tests.fixtures_s3 import S3Endpoint, create_bucket, s3_settings

EXAMPLES = int(os.environ.get("EXPORTD_SCHEMATHESIS_EXAMPLES", "30"))


@pytest.fixture(scope="module")
def served_daemon(
    admin_url: str, template_database: str, rclone_server: S3Endpoint
) -> Iterator[str]:
    """A daemon on its own database and bucket for the module; yields its base URL."""
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
        yield f"http://127.0.0.1:{state['port']}"
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


@pytest.mark.parametrize("operation", _operations(), ids=lambda op: op.label)
def test_every_answer_matches_the_document(operation: Any, served_daemon: str) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(
            base_url=served_daemon, headers=AUTH, excluded_checks=[positive_data_acceptance]
        )

    check()
