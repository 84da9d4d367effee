"""``Completing``: the two answers of a completion, in order, and a caller giving up."""

from __future__ import annotations

import asyncio

import pytest

from exportd.errors import ErrorKind, ExportError
from exportd.queue.interface import Completing
from exportd.queue.job import ExportResult

RESULT = ExportResult("k", 1, 1, "0" * 64)


async def test_a_committed_object_is_told_before_its_row_is_recorded() -> None:
    completing = Completing()
    completing.object_committed()
    assert completing.committed.done()
    assert await completing.committed is True
    assert not completing.outcome.done()
    completing.settle(RESULT)
    assert await completing.outcome == RESULT


async def test_a_job_lost_or_failed_is_told_not_committed() -> None:
    lost, failed = Completing(), Completing()
    lost.settle(None)
    failed.settle(ExportError(ErrorKind.STORAGE_UNAVAILABLE, "S3 down"))
    assert lost.committed.done()
    assert failed.committed.done()
    assert (await lost.committed, await lost.outcome) == (False, None)
    assert await failed.committed is False
    with pytest.raises(ExportError):
        await failed.outcome


async def test_answers_after_the_caller_gave_up_are_dropped() -> None:
    completing = Completing()
    completing.give_up()
    completing.object_committed()
    completing.settle(ExportError(ErrorKind.DATABASE_UNAVAILABLE, "gone"))
    assert completing.committed.cancelled()
    assert completing.outcome.cancelled()


async def test_a_caller_cancelled_while_it_waits_leaves_the_store_free_to_answer() -> None:
    completing = Completing()

    async def caller() -> None:
        try:
            await completing.committed
        finally:
            completing.give_up()

    task = asyncio.create_task(caller())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    completing.settle(ExportError(ErrorKind.DATABASE_UNAVAILABLE, "gone"))
    assert completing.outcome.cancelled()
