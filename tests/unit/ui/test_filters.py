"""The jobs page's filters, as its form sends them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

from exportd.api.query_params import Cursor
from exportd.ui.filters import JobFilter, parse_filter


def test_empty_fields_are_no_filter() -> None:
    got, problems = parse_filter(
        {"state": [""], "kind": [""], "owner": [""], "error_kind": [""], "since": [""]}, None
    )
    assert problems == []
    assert got == JobFilter()


def test_times_without_a_zone_are_utc() -> None:
    got, problems = parse_filter({"since": ["2026-12-01T10:26"], "until": ["2026-12-02"]}, None)
    assert problems == []
    assert got.since == datetime(2026, 12, 1, 10, 26, tzinfo=UTC)
    assert got.until == datetime(2026, 12, 2, tzinfo=UTC)


def test_bad_values_are_reported_and_left_out() -> None:
    got, problems = parse_filter(
        {"state": ["nope"], "error_kind": ["<x>"], "since": ["yesterday"], "x": ["1"]}, None
    )
    assert {p.field for p in problems} == {"state", "error_kind", "since", "x"}
    assert (got.state, got.error_kind, got.since) == (None, None, None)


def test_an_owner_scope_cannot_be_widened() -> None:
    got, problems = parse_filter({"owner": ["bob"]}, "alice")
    assert got.owner == "alice"
    assert [p.field for p in problems] == ["owner"]
    assert parse_filter({}, "alice")[0].owner == "alice"


def test_the_next_pages_query_keeps_the_filters() -> None:
    cursor = Cursor(datetime(2026, 1, 1, tzinfo=UTC), uuid.uuid4())
    wanted = JobFilter(state="failed", owner="a&b=c", since=datetime(2026, 1, 1, tzinfo=UTC))
    query = parse_qs(wanted.query(cursor=cursor)[1:])
    assert query == {
        "state": ["failed"],
        "owner": ["a&b=c"],
        "since": ["2026-01-01T00:00:00"],
        "cursor": [cursor.encode()],
    }
    again, problems = parse_filter(query, None)
    assert problems == []
    assert again == JobFilter(
        state="failed", owner="a&b=c", since=datetime(2026, 1, 1, tzinfo=UTC), cursor=cursor
    )
