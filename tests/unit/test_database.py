"""How database failures are classified: outages are retried, bad SQL is not."""

from __future__ import annotations

import json

import asyncpg
import pytest

from exportd.database import classify_pg_error, decode_json, is_unavailable
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


# Outages of every kind Postgres and asyncpg report them in: each is retried by
# the worker and answered 503 by the API.
OUTAGES = [
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("cannot call Connection.fetch(): connection has been released"),
    asyncpg.InternalClientError("cannot switch to state 15; another operation is in progress"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.SerializationError("could not serialize access"),
    asyncpg.DeadlockDetectedError("deadlock detected"),
    asyncpg.PostgresIOError("could not read block"),
    asyncpg.InternalServerError("unexpected state"),
    asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
]
NOT_OUTAGES = [
    asyncpg.UndefinedColumnError('column "x" does not exist'),
    asyncpg.CheckViolationError("new row violates check constraint"),
    asyncpg.RaiseError("raised by a trigger"),
    ValueError("something else"),
]


@pytest.mark.parametrize("exc", OUTAGES, ids=lambda e: type(e).__name__)
def test_outages_are_unavailable_and_retried(exc: BaseException) -> None:
    assert is_unavailable(exc)
    assert classify_pg_error(exc, "x").kind in {ErrorKind.DATABASE_UNAVAILABLE, ErrorKind.TIMEOUT}


@pytest.mark.parametrize("exc", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_refusals_and_bugs_are_not_unavailable(exc: BaseException) -> None:
    assert not is_unavailable(exc)
    assert classify_pg_error(exc, "x").kind in {ErrorKind.QUERY_ERROR, ErrorKind.INTERNAL}


def test_a_number_past_pythons_int_digit_limit_keeps_its_digits() -> None:
    digits = "1" + "0" * 5000
    assert decode_json(f'{{"n": {digits}, "m": -{digits}, "k": 7}}') == {
        "n": digits,
        "m": "-" + digits,
        "k": 7,
    }


def test_a_number_past_a_floats_range_keeps_its_digits_and_stays_valid_json() -> None:
    text = "1" + "0" * 400 + ".5"
    value = decode_json(f"[{text}, 0.25]")
    assert value == [text, 0.25]
    json.dumps(value, allow_nan=False)  # no Infinity in what is built from it
