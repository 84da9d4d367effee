"""The daemon's presence loop against a fake registry (the queue's two methods):
announced at once and on every beat while the worker lives, never raising,
and retired within its deadline."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

import exportd
from exportd.daemon import presence
from exportd.queue.workers import WorkerIdentity


class FakeRegistry:
    def __init__(self, *, fail: bool = False, hang: bool = False) -> None:
        self.announced: list[WorkerIdentity] = []
        self.retired: list[str] = []
        self.fail = fail
        self.hang = hang

    async def announce_worker(self, identity: WorkerIdentity) -> None:
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise OSError("connection refused")
        self.announced.append(identity)

    async def retire_worker(self, worker_id: str) -> bool:
        if self.hang:
            await asyncio.Event().wait()
        self.retired.append(worker_id)
        return True


def test_the_identity_is_this_process() -> None:
    me = presence.identity_of("w1", 4)
    assert (me.worker_id, me.version, me.concurrency) == ("w1", exportd.__version__, 4)
    assert me.pid > 0
    assert me.host
    assert me.heartbeat_seconds == presence.HEARTBEAT_SECONDS


class Liveness:
    """The worker's ``alive``, counting how often the loop asked: each ask is a beat."""

    def __init__(self, alive: bool) -> None:
        self.alive = alive
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.alive


async def _beats(registry: FakeRegistry, alive: Liveness, beats: int) -> None:
    """Run the loop (0.01 s beats) until it has asked ``beats`` times, then stop it."""
    me = presence.identity_of("w1", 2, heartbeat_seconds=0.01)
    task = asyncio.create_task(presence.keep_presence(registry, me, alive))
    async with asyncio.timeout(20):
        while alive.asked < beats:
            await asyncio.sleep(0.005)
    assert not task.done()  # never ends on its own, whatever happened
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_announces_on_every_beat_while_the_worker_lives() -> None:
    registry = FakeRegistry()
    await _beats(registry, Liveness(alive=True), 3)
    assert len(registry.announced) >= 2
    assert {i.worker_id for i in registry.announced} == {"w1"}


async def test_no_heartbeat_while_the_worker_loop_is_not_alive() -> None:
    registry = FakeRegistry()
    await _beats(registry, Liveness(alive=False), 3)
    assert registry.announced == []


async def test_a_failing_or_hanging_database_is_logged_and_the_loop_goes_on() -> None:
    with capture_logs() as logs:
        await _beats(FakeRegistry(fail=True), Liveness(alive=True), 3)
        await _beats(FakeRegistry(hang=True), Liveness(alive=True), 3)
    failures = [e["error"] for e in logs if e["event"] == "worker_heartbeat_failed"]
    assert any("connection refused" in error for error in failures)
    assert any("TimeoutError" in error for error in failures)


async def test_retire_deletes_the_row_or_gives_up_at_its_deadline() -> None:
    registry = FakeRegistry()
    await presence.retire(registry, "w1", 1.0)
    assert registry.retired == ["w1"]

    with capture_logs() as logs:
        await presence.retire(FakeRegistry(hang=True), "w1", 0.05)
    assert [e["event"] for e in logs] == ["worker_retire_failed"]
