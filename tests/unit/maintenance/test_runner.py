"""The maintenance runner's tick, with a fake task: full rounds run again, a failure is survived."""

from __future__ import annotations

from structlog.testing import capture_logs

from exportd.maintenance.runner import tick
from exportd.metrics import Metrics


class Countdown:
    """A task that has ``left`` items to do, ``batch_size`` per round."""

    name = "countdown"

    def __init__(self, left: int, batch_size: int, fail_at: int | None = None) -> None:
        self.left = left
        self.batch_size = batch_size
        self.rounds = 0
        self.fail_at = fail_at

    async def run_once(self) -> int:
        self.rounds += 1
        if self.rounds == self.fail_at:
            raise ConnectionResetError("database gone")
        done = min(self.left, self.batch_size)
        self.left -= done
        return done


async def test_tick_runs_full_rounds_again_and_survives_a_failure() -> None:
    metrics = Metrics()
    task = Countdown(left=5, batch_size=2)
    assert await tick(task, metrics=metrics) == 5
    assert task.rounds == 3
    assert metrics.value("exportd_maintenance_items_total", {"task": "countdown"}) == 5

    failing = Countdown(left=5, batch_size=2, fail_at=2)
    with capture_logs() as logs:
        assert await tick(failing, metrics=metrics) == 2
    assert [e["event"] for e in logs] == ["maintenance_failed"]
    assert logs[0]["task"] == "countdown"
    assert metrics.value("exportd_maintenance_failures_total", {"task": "countdown"}) == 1
