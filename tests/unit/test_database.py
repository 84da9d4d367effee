"""How database failures are classified: outages are retried, bad SQL is not."""

from __future__ import annotations

import asyncpg
import pytest

from exportd.database import classify_pg_error
from exportd.errors import ErrorKind


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectionResetError(104, "Connection reset by peer"), ErrorKind.DATABASE_UNAVAILABLE),
        (
            asyncpg.ConnectionDoesNotExistError("connection was closed"),
            ErrorKind.DATABASE_UNAVAILABLE,
        ),
        (TimeoutError(), ErrorKind.DATABASE_UNAVAILABLE),
        # What asyncpg raised when a transaction's COMMIT followed a COPY that
        # a Postgres restart had cut off (seen in the fault suite): an outage.
        (
            asyncpg.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress"
            ),
            ErrorKind.DATABASE_UNAVAILABLE,
        ),
        (asyncpg.UndefinedColumnError('column "x" does not exist'), ErrorKind.QUERY_ERROR),
        (asyncpg.QueryCanceledError("canceling statement"), ErrorKind.TIMEOUT),
        (ValueError("something else"), ErrorKind.INTERNAL),
    ],
)
def test_classification(exc: BaseException, kind: ErrorKind) -> None:
    error = classify_pg_error(exc, "kind 'orders'")
    assert error.kind is kind
    assert error.message.startswith("kind 'orders'")
