"""Reading API requests, without a server: cursors, request ids, download lifetimes."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exportd.apirequests import Cursor, RequestInvalid, owner_scope, parse_job_id, request_id
from exportd.jobview import download_ttl

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@given(
    st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 1)),
    st.uuids(),
)
def test_a_cursor_reads_back_as_it_was_written(created: datetime, job_id: uuid.UUID) -> None:
    cursor = Cursor(created, job_id)
    assert Cursor.decode(cursor.encode()) == cursor


@given(st.text())
def test_anything_else_is_refused_as_a_cursor_with_a_value_error(token: str) -> None:
    # Any other exception escaping would be a 500 for a mistyped cursor.
    with contextlib.suppress(ValueError):
        Cursor.decode(token)


@pytest.mark.parametrize(
    ("presented", "kept"),
    [("abc-1", True), ("trace:9.z_Q", True), ("", False), ("a b", False), ("x" * 129, False)],
)
def test_a_callers_request_id_is_kept_only_when_sane(presented: str, kept: bool) -> None:
    assert (request_id(presented) == presented) is kept
    assert request_id(None) != request_id(None)


def test_malformed_job_ids_are_none() -> None:
    assert parse_job_id("not-a-uuid") is None
    assert parse_job_id(str(uuid.UUID(int=5))) == uuid.UUID(int=5)


def test_the_owner_scope_comes_from_header_or_query_but_they_must_agree() -> None:
    assert owner_scope(None, None) is None
    assert owner_scope("u1", None) == owner_scope(None, "u1") == owner_scope("u1", "u1") == "u1"
    for header, query in (("u1", "u2"), ("", None)):
        with pytest.raises(RequestInvalid):
            owner_scope(header, query)


def _doc(
    state: str = "completed", expires: datetime | None = NOW + timedelta(days=1)
) -> dict[str, object]:
    return {
        "state": state,
        "object_key": "k",
        "expires_at": None if expires is None else expires.isoformat(),
    }


def test_a_download_url_lives_its_ttl_but_never_past_the_object() -> None:
    hour = timedelta(hours=1)
    assert download_ttl(_doc(), hour, NOW) == hour
    assert download_ttl(_doc(expires=None), hour, NOW) == hour
    assert download_ttl(_doc(expires=NOW + timedelta(minutes=5)), hour, NOW) == timedelta(minutes=5)
    assert download_ttl(_doc(expires=NOW - timedelta(seconds=1)), hour, NOW) is None
    assert download_ttl(_doc(state="expired"), hour, NOW) is None
    assert download_ttl(_doc(state="pending"), hour, NOW) is None
