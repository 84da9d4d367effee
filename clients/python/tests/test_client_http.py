"""The HTTP client, sync and async, against a real `exportd run`: the whole life of
an export, and each error the API answers, typed."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psycopg
import pytest
from client_support import Exportd, stored_object
from exportd_client import (
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    DuplicateJob,
    ExportFailed,
    FieldProblem,
    Gone,
    InvalidJob,
    NotFound,
    RateLimited,
    Unauthorized,
    WaitTimeout,
)

from tests.support.daemon_harness import TOKEN

LATER = datetime.now(UTC) + timedelta(days=1)


def test_an_export_lives_its_whole_life_through_the_sync_client(
    exportd: Exportd, owner: str, ledger: list[str], tmp_path: Path
) -> None:
    with Client(exportd.url, TOKEN) as client:
        [kind] = [k for k in client.kinds() if k.name == "ledger"]
        assert "csv" in kind.formats
        job = client.enqueue("ledger", owner=owner)
        assert (job.state, job.owner, job.kind, job.format) == ("pending", owner, "ledger", "csv")
        assert client.get(job.id).id == job.id

        done = client.wait(job.id, timeout=60)
        assert (done.state, done.row_count, done.error_kind) == ("completed", 3, None)
        assert done.download_url is not None
        assert [j.id for j in client.list(owner=owner)] == [job.id]

        written = client.download(job.id, tmp_path / "export.csv")
        stored = stored_object(exportd, str(done.object_key))
        assert (tmp_path / "export.csv").read_bytes() == stored
        assert written == len(stored) == done.size_bytes
        assert stored.decode().splitlines() == ledger
        into = io.BytesIO()
        client.download(str(job.id), into)
        assert into.getvalue() == stored

        assert client.download_url(job.id).startswith(exportd.s3.url)
        assert client.delete(job.id).state == "expired"
        with pytest.raises(Gone):
            client.download_url(job.id)
        with pytest.raises(Gone):
            client.download(job.id, tmp_path / "gone.csv")
        assert not (tmp_path / "gone.csv").exists()


async def test_an_export_lives_its_whole_life_through_the_async_client(
    exportd: Exportd, owner: str, ledger: list[str], tmp_path: Path
) -> None:
    listener = await asyncpg.connect(exportd.dsn)
    try:
        async with AsyncClient(exportd.url, TOKEN, owner=owner) as client:
            assert "ledger" in [k.name for k in await client.kinds()]
            job = await client.enqueue("ledger")  # the owner scope is the owner
            assert (job.state, job.owner) == ("pending", owner)
            assert (await client.get(job.id)).id == job.id

            done = await client.wait(job.id, timeout=60, listen=listener)
            assert (done.state, done.row_count) == ("completed", 3)
            assert [j.id async for j in client.list()] == [job.id]

            written = await client.download(job.id, tmp_path / "export.csv")
            stored = stored_object(exportd, str(done.object_key))
            assert (tmp_path / "export.csv").read_bytes() == stored
            assert written == len(stored)
            assert stored.decode().splitlines() == ledger

            assert (await client.delete(job.id)).state == "expired"
            with pytest.raises(Gone):
                await client.download_url(job.id)
    finally:
        await listener.close()


def test_wait_raises_the_kind_of_a_job_that_fails_when_polling(
    exportd: Exportd, owner: str
) -> None:
    with Client(exportd.url, TOKEN) as client:
        job = client.enqueue("broken", owner=owner)
        with pytest.raises(ExportFailed) as failed:
            client.wait(job.id, timeout=60)
    assert failed.value.error_kind == "query_error"
    assert (failed.value.job.id, failed.value.job.state) == (job.id, "failed")
    assert "no_such_table" in str(failed.value.job.error)


def test_wait_raises_the_kind_of_a_job_that_fails_listening_with_psycopg(
    exportd: Exportd, owner: str
) -> None:
    with (
        psycopg.connect(exportd.dsn, autocommit=True) as listener,
        Client(exportd.url, TOKEN) as client,
    ):
        job = client.enqueue("broken", owner=owner)
        with pytest.raises(ExportFailed) as failed:
            client.wait(job.id, timeout=60, listen=listener)
    assert failed.value.error_kind == "query_error"


async def test_wait_raises_the_kind_of_a_job_that_fails_listening_async(
    exportd: Exportd, owner: str
) -> None:
    listener = await psycopg.AsyncConnection.connect(exportd.dsn, autocommit=True)
    try:
        async with AsyncClient(exportd.url, TOKEN) as client:
            job = await client.enqueue("broken", owner=owner)
            with pytest.raises(ExportFailed) as failed:
                await client.wait(job.id, timeout=60, listen=listener)
            assert failed.value.error_kind == "query_error"
            with pytest.raises(ExportFailed) as polled:
                await client.wait(job.id, timeout=60)
            assert polled.value.error_kind == "query_error"

            again = await client.retry(job.id)
            assert (again.state, again.attempts) == ("pending", 0)
            with pytest.raises(ExportFailed) as retried:
                await client.wait(job.id, timeout=60)
            assert [r.error_kind for r in retried.value.job.runs or []] == ["query_error"] * 2
    finally:
        await listener.close()


def _raw_post(exportd: Exportd, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = httpx.post(
        f"{exportd.url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return answer.status_code, answer.json()


def test_a_400_carries_every_problem_the_daemon_found(exportd: Exportd, owner: str) -> None:
    params = {"since": "not a date", "until": "2025-01-01"}
    options = {"timezone": "Mars/Olympus"}
    with Client(exportd.url, TOKEN) as client, pytest.raises(BadRequest) as refused:
        client.enqueue("dated", params, owner=owner, options=options)
    status, body = _raw_post(
        exportd, {"kind": "dated", "owner": owner, "params": params, "options": options}
    )
    assert (refused.value.status, status) == (400, 400)
    expected = [FieldProblem(e["field"], e["message"]) for e in body["errors"]]
    assert refused.value.problems == expected
    fields = {p.field for p in refused.value.problems}
    assert {"params.since", "params.until", "options.timezone"} <= fields, fields


def test_the_client_refuses_what_the_daemon_refuses_in_its_words(exportd: Exportd) -> None:
    """The checks the client makes before sending give the messages the daemon
    gives for the same body (owner, kind, dedupe_key, priority, max_attempts,
    run_after: every bound the table sets)."""
    run_after = datetime(1960, 1, 1, tzinfo=UTC)
    with Client(exportd.url, TOKEN) as client, pytest.raises(InvalidJob) as refused:
        client.enqueue(
            "ledger",
            owner="x" * 257,
            dedupe_key="é" * 129,
            priority=40000,
            max_attempts=0,
            run_after=run_after,
        )
    assert not isinstance(refused.value, BadRequest)  # nothing was sent
    status, body = _raw_post(
        exportd,
        {
            "kind": "ledger",
            "owner": "x" * 257,
            "dedupe_key": "é" * 129,
            "priority": 40000,
            "max_attempts": 0,
            "run_after": run_after.isoformat(),
        },
    )
    assert status == 400
    daemon = {FieldProblem(e["field"], e["message"]) for e in body["errors"]}
    assert set(refused.value.problems) == daemon
    assert len(daemon) == 5

    for params in ({"note": "a\x00b"}, {"a\x00": 1}, {"deep": [{"x": ["\ud800"]}]}):
        with Client(exportd.url, TOKEN) as client, pytest.raises(InvalidJob) as stored:
            client.enqueue("ledger", params, owner="acme")
        sent = json.dumps({"kind": "ledger", "owner": "acme", "params": params})
        answer = httpx.post(
            f"{exportd.url}/v1/jobs",
            content=sent.encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        daemon = {FieldProblem(e["field"], e["message"]) for e in answer.json()["errors"]}
        # The daemon knows more (ledger takes no params): what the client
        # found, it found too, in the same words.
        [problem] = stored.value.problems
        assert problem in daemon, (params, daemon)

    with Client(exportd.url, TOKEN) as client, pytest.raises(InvalidJob) as control:
        client.enqueue("led\x07ger", owner="")
    status, body = _raw_post(exportd, {"kind": "led\x07ger", "owner": ""})
    daemon = {FieldProblem(e["field"], e["message"]) for e in body["errors"]}
    assert set(control.value.problems) == daemon
    assert {p.field for p in daemon} == {"owner", "kind"}


def test_unknown_tokens_and_other_owners_are_refused(exportd: Exportd, owner: str) -> None:
    with Client(exportd.url, "not-a-token") as stranger, pytest.raises(Unauthorized):
        stranger.kinds()
    with Client(exportd.url, TOKEN, owner=owner) as mine:
        job = mine.enqueue("ledger", run_after=LATER)
        with Client(exportd.url, TOKEN, owner=f"{owner}-other") as theirs:
            with pytest.raises(NotFound):
                theirs.get(job.id)
            with pytest.raises(NotFound):
                theirs.cancel(job.id)
            assert list(theirs.list()) == []
        with pytest.raises(NotFound):
            mine.get(uuid.uuid4())
        assert mine.cancel(job.id).state == "cancelled"


def test_a_dedupe_conflict_carries_the_live_job(exportd: Exportd, owner: str) -> None:
    with Client(exportd.url, TOKEN) as client:
        first = client.enqueue("ledger", owner=owner, dedupe_key="monthly", run_after=LATER)
        with pytest.raises(DuplicateJob) as duplicate:
            client.enqueue("ledger", owner=owner, dedupe_key="monthly")
        assert duplicate.value.job.id == first.id
        assert duplicate.value.job.state == "pending"
        assert client.cancel(first.id).state == "cancelled"
        with pytest.raises(Conflict) as conflict:
            client.cancel(first.id)
        assert (conflict.value.code, conflict.value.state) == ("not_cancellable", "cancelled")
        with pytest.raises(Conflict) as deleted:
            client.delete(first.id)  # the daemon's own refusal
        assert (deleted.value.code, deleted.value.state) == ("conflict", "cancelled")
        # Once the live job ended, the key is free again.
        second = client.enqueue("ledger", owner=owner, dedupe_key="monthly", run_after=LATER)
        assert second.id != first.id


async def test_a_429_says_when_to_ask_again(exportd: Exportd, owner: str) -> None:
    async with AsyncClient(exportd.url, TOKEN) as client:
        first = await client.enqueue("limited", owner=owner)
        with pytest.raises(RateLimited) as limited:
            await client.enqueue("limited", owner=owner)
    assert (limited.value.status, limited.value.code) == (429, "quota_exceeded")
    assert limited.value.retry_after is not None
    assert limited.value.retry_at is not None
    # One job a day: asked again a day after the first, in whole seconds, rounded up.
    assert limited.value.retry_at == first.created_at + timedelta(days=1)
    assert 0 < limited.value.retry_after <= 86400


def test_list_walks_every_page_newest_first(exportd: Exportd, owner: str) -> None:
    with Client(exportd.url, TOKEN) as client:
        made = [client.enqueue("ledger", owner=owner, run_after=LATER).id for _ in range(5)]
        listed = [job.id for job in client.list(owner=owner, page_size=2)]
        assert listed == made[::-1]
        client.cancel(made[0])
        pending = client.list(owner=owner, state=["pending"], kind=["ledger"], page_size=2)
        assert [job.id for job in pending] == made[:0:-1]
        # One state or kind may be given as a string (not taken letter by letter).
        one = client.list(owner=owner, state="pending", kind="ledger", page_size=2)
        assert [job.id for job in one] == made[:0:-1]
        for job_id in made[1:]:
            client.cancel(job_id)


async def test_wait_gives_up_after_its_timeout_with_the_job_as_last_seen(
    exportd: Exportd, owner: str
) -> None:
    listener = await asyncpg.connect(exportd.dsn)
    try:
        async with AsyncClient(exportd.url, TOKEN, owner=owner) as client:
            job = await client.enqueue("ledger", run_after=LATER)
            with pytest.raises(WaitTimeout) as polled:
                await client.wait(job.id, timeout=0.3)
            with pytest.raises(WaitTimeout) as listened:
                await client.wait(job.id, timeout=0.3, listen=listener)
            assert (polled.value.job.state, listened.value.job.state) == ("pending", "pending")
            assert isinstance(polled.value, TimeoutError)
            await client.cancel(job.id)
    finally:
        await listener.close()
