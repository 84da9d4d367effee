"""The owner scope a client acts for: any owner the table takes (UTF-8 text up to
256 bytes), and a clear refusal, in the daemon's words, of one it does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from client_support import Exportd
from exportd_client import AsyncClient, Client, FieldProblem, InvalidJob

from tests.support.daemon_harness import TOKEN


async def test_an_owner_beyond_ascii_is_served_under_its_scope(
    exportd: Exportd, owner: str
) -> None:
    josé = f"josé-{owner}-日本"
    with Client(exportd.url, TOKEN, owner=josé) as client:
        # Due tomorrow: a job due now may complete before the cancel reaches it.
        job = client.enqueue("ledger", run_after=datetime.now(UTC) + timedelta(days=1))
        assert job.owner == josé
        assert [j.id for j in client.list()] == [job.id]
        assert client.cancel(job.id).state == "cancelled"
    async with AsyncClient(exportd.url, TOKEN, owner=josé) as aclient:
        assert (await aclient.get(job.id)).owner == josé
    with Client(exportd.url, TOKEN, owner=f"jose-{owner}") as other:
        assert list(other.list()) == []


@pytest.mark.parametrize("scope", ["x" * 10240, "a\x00b", "a\nb", ""])
def test_an_owner_scope_the_daemon_refuses_is_refused_at_once(exportd: Exportd, scope: str) -> None:
    with pytest.raises(InvalidJob) as refused:
        Client(exportd.url, TOKEN, owner=scope)
    with pytest.raises(InvalidJob):
        AsyncClient(exportd.url, TOKEN, owner=scope)
    # The daemon's own words for the same owner (in a body: 10 KB fit no request line).
    answer = httpx.post(
        f"{exportd.url}/v1/jobs",
        json={"kind": "ledger", "owner": scope},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 400
    daemon = [FieldProblem("owner_scope", e["message"]) for e in answer.json()["errors"]]
    assert refused.value.problems == daemon
