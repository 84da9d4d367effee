"""What the one enqueue path refuses before anything is sent to the table."""

from __future__ import annotations

import pytest

from exportd import limits
from exportd.queue.enqueue import MAX_ATTEMPTS_RANGE, PRIORITY_RANGE, NewJob, problems


def test_a_job_the_table_takes_has_no_problems() -> None:
    assert problems(NewJob("u1", "orders", dedupe_key="k", priority=-32768, max_attempts=100)) == []


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (NewJob("u\x1b1", "orders"), [("owner", "must not contain control characters")]),
        (NewJob("", "orders"), [("owner", "must not be empty")]),
        (
            NewJob("u1", "k" * (limits.KIND_MAX_BYTES + 1)),
            [("kind", f"must be at most {limits.KIND_MAX_BYTES} bytes of UTF-8 (it has 129)")],
        ),
        (NewJob("u1", "orders", dedupe_key=""), [("dedupe_key", "must not be empty")]),
        (
            NewJob("u1", "orders", priority=PRIORITY_RANGE[1] + 1),
            [("priority", "must be a whole number from -32768 to 32767")],
        ),
        (
            NewJob("u1", "orders", max_attempts=10**10),
            [("max_attempts", "must be a whole number from {} to {}".format(*MAX_ATTEMPTS_RANGE))],
        ),
        (
            NewJob("é\x00", "orders", max_attempts=0),
            [
                ("owner", "must not contain NUL characters"),
                ("max_attempts", "must be a whole number from 1 to 100"),
            ],
        ),
    ],
)
def test_every_value_the_table_or_driver_would_refuse_is_named(
    job: NewJob, expected: list[tuple[str, str]]
) -> None:
    assert problems(job) == expected
