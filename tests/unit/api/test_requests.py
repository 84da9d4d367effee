"""Reading API requests, without a server: cursors, request ids, owner scopes, bounds on
every caller string, JSON bodies, timestamps, download lifetimes."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exportd import limits
from exportd.api.query_params import Cursor, owner_scope, parse_list_query
from exportd.api.requests import (
    RequestInvalid,
    params_problems,
    parse_job_id,
    parse_json_body,
    parse_new_job,
    parse_timestamp,
    request_id,
)
from exportd.api.views import download_ttl, timestamp
from exportd.definitions.loader import definitions_from_text
from exportd.limits import json_depth

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
RANGE = "must lie from 1970-01-01T00:00:00+00:00 up to (not including) 9999-01-01T00:00:00+00:00"
HINT = "must be an ISO 8601 timestamp with a UTC offset, e.g. 2025-01-31T12:00:00Z"
DEFINITIONS = definitions_from_text(
    """
[kinds.k]
query = "SELECT 1 AS id WHERE :owner <> '' AND :a::text IS NOT NULL"
[kinds.k.params.a]
type = "list"
items = "string"
required = false
"""
)


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
    [
        ("abc-1", True),
        ("trace:9.z_Q", True),
        ("x" * 128, True),
        ("", False),
        ("a b", False),
        ("x" * 129, False),
        ("a\nb", False),
        ("a\udcffb", False),  # a non-UTF-8 byte, as aiohttp reads it
        ("\u00e9", False),
    ],
)
def test_a_callers_request_id_is_kept_only_when_sane(presented: str, kept: bool) -> None:
    assert (request_id(presented) == presented) is kept
    assert request_id(None) != request_id(None)


def test_malformed_job_ids_are_none() -> None:
    assert parse_job_id("not-a-uuid") is None
    assert parse_job_id(str(uuid.UUID(int=5))) == uuid.UUID(int=5)


def test_the_owner_scope_comes_from_header_or_query_but_they_must_agree() -> None:
    assert owner_scope([], []) is None
    assert owner_scope(["u1"], []) == owner_scope([], ["u1"]) == owner_scope(["u1"], ["u1"]) == "u1"
    # The same owner sent twice is one owner; two owners are refused, never the first served.
    assert owner_scope(["u1", "u1"], ["u1"]) == "u1"
    for headers, queries in ((["u1"], ["u2"]), (["u1", "u2"], []), ([], ["u1", "u2"]), ([""], [])):
        with pytest.raises(RequestInvalid) as refused:
            owner_scope(headers, queries)
        assert [e.field for e in refused.value.errors] == ["owner_scope"]


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ("u" * (limits.OWNER_MAX_BYTES + 1), "must be at most 256 bytes of UTF-8 (it has 257)"),
        # 65 four-byte characters: within 256 characters, over 256 bytes.
        ("\U0001f600" * 65, "must be at most 256 bytes of UTF-8 (it has 260)"),
        ("x" * 8000, "must be at most 256 bytes of UTF-8 (it has 8000)"),
        ("a\udcffb", "must be valid Unicode text"),  # how aiohttp reads a non-UTF-8 byte
        ("a\x00b", "must not contain NUL characters"),
        ("a\tb", "must not contain control characters"),
        ("a\x7fb", "must not contain control characters"),
    ],
)
def test_the_owner_scope_is_bounded_like_the_owner(scope: str, reason: str) -> None:
    for headers, queries in (([scope], []), ([], [scope])):
        with pytest.raises(RequestInvalid) as refused:
            owner_scope(headers, queries)
        assert [e.as_json() for e in refused.value.errors] == [
            {"field": "owner_scope", "message": reason}
        ]
    assert owner_scope(["\U0001f600" * 64], []) == "\U0001f600" * 64  # exactly 256 bytes


def test_a_json_body_nested_too_deep_is_refused_before_it_is_decoded() -> None:
    deep = "[" * 1000 + "]" * 1000  # about 2 KB
    with pytest.raises(RequestInvalid) as refused:
        parse_json_body(deep.encode())
    assert refused.value.errors[0].message == (
        f"the body nests arrays and objects deeper than {limits.REQUEST_JSON_MAX_DEPTH} levels"
    )
    # A deep body in an object, in params; brackets inside strings do not count.
    nested = '{"kind": "k", "params": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    with pytest.raises(RequestInvalid):
        parse_json_body(nested.encode())
    assert parse_json_body(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"[["}') == {
        "a": '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["[['
    }
    depth = limits.REQUEST_JSON_MAX_DEPTH
    assert parse_json_body(("[" * depth + "]" * depth).encode()) is not None
    assert json_depth("[" * (depth + 1) + "]" * (depth + 1)) == depth + 1
    assert json_depth('["]]]]", {"a": "{{{{"}]') == 2
    assert json_depth('[[["\\"", []]]]') == 4


@given(st.recursive(st.none() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
def test_the_depth_read_without_decoding_is_the_decoded_depth(document: object) -> None:
    def depth(value: object) -> int:
        if isinstance(value, dict):
            return 1 + max(map(depth, value.values()), default=0)
        if isinstance(value, list):
            return 1 + max(map(depth, value), default=0)
        return 0

    text = json.dumps(document, ensure_ascii=False)
    assert json_depth(text) == depth(document)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe{}", "the body is not UTF-8 text"),
        (b'{"a": NaN}', "the body is not JSON: NaN is not JSON"),
        (b'{"a": -Infinity}', "the body is not JSON: -Infinity is not JSON"),
        (b'{"a": 1e400}', "the body is not JSON: the number 1e400 is out of range"),
    ],
)
def test_a_body_postgres_could_not_store_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(RequestInvalid) as refused:
        parse_json_body(body)
    assert str(refused.value) == f": {reason}"


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"a": "x\x00"}, "params.a", "must not contain NUL characters, in keys and values alike"),
        (
            {"a": [{"b\x00": 1}]},
            "params.a",
            "must not contain NUL characters, in keys and values alike",
        ),
        ({"\x00": 1}, "params", "must not contain NUL characters, in keys and values alike"),
        (
            {"a": {"b": ["\ud800"]}},
            "params.a",
            "must be valid Unicode text, in keys and values alike",
        ),
        (
            {"a": "x" * limits.PARAMS_MAX_BYTES},
            "params",
            f"must be at most {limits.PARAMS_MAX_BYTES} bytes as JSON text (it has 65545)",
        ),
        (
            {"a": "\u00e9" * (limits.PARAMS_MAX_BYTES // 2)},
            "params",
            f"must be at most {limits.PARAMS_MAX_BYTES} bytes as JSON text (it has 65545)",
        ),
    ],
)
def test_params_the_table_cannot_hold_are_named(
    params: dict[str, object], field: str, reason: str
) -> None:
    assert [e.as_json() for e in params_problems(params)] == [{"field": field, "message": reason}]
    assert params_problems({"a": "x" * (limits.PARAMS_MAX_BYTES - 9)}) == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("9999-12-31T23:59:59-14:00", RANGE),  # past year 9999 in UTC: was a 500
        ("0001-01-01T00:00:00Z", RANGE),  # stored as -infinity by the driver
        ("0001-01-01T00:00:00+14:00", RANGE),  # before year 1 in UTC
        ("9999-01-01T00:00:00Z", RANGE),
        ("1969-12-31T23:59:59Z", RANGE),
        ("2025-01-31T12:00:00", HINT),
        ("yesterday", HINT),
        ("2025-01-31T12:00:00Z" + " " * 300, HINT),
    ],
)
def test_timestamps_outside_the_accepted_range_are_refused_with_the_range(
    raw: str, reason: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(reason) + "$"):
        parse_timestamp(raw)


def test_accepted_timestamps_come_back_in_utc() -> None:
    assert parse_timestamp("1970-01-01T00:00:00Z") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_timestamp("9998-12-31T23:59:59+00:30") == datetime(
        9998, 12, 31, 23, 29, 59, tzinfo=UTC
    )
    assert parse_timestamp("2025-06-01T14:00:00+02:00").utcoffset() == timedelta(0)


def test_timestamps_of_the_driver_s_infinities_are_written_with_an_offset() -> None:
    # asyncpg reads infinity and -infinity as naive datetime.max and datetime.min.
    assert timestamp(datetime.max) == "9999-12-31T23:59:59.999999+00:00"
    assert timestamp(datetime.min) == "0001-01-01T00:00:00+00:00"
    assert timestamp(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00+00:00"
    plus_two = timezone(timedelta(hours=2))
    assert timestamp(datetime(2025, 1, 1, 2, tzinfo=plus_two)) == "2025-01-01T02:00:00+02:00"
    # A cursor made on a row at infinity reads back.
    cursor = Cursor(datetime.max, uuid.UUID(int=1))
    assert Cursor.decode(cursor.encode()).created_at == datetime.max.replace(tzinfo=UTC)


def _multi(**values: list[str]) -> dict[str, list[str]]:
    return values


@pytest.mark.parametrize(
    "name", ["owner", "owner_scope", "limit", "cursor", "created_after", "created_before"]
)
def test_a_single_valued_parameter_given_twice_differently_is_refused(name: str) -> None:
    good = {
        "owner": "u1",
        "owner_scope": "u1",
        "limit": "5",
        "cursor": Cursor(datetime(2025, 1, 1, tzinfo=UTC), uuid.UUID(int=1)).encode(),
        "created_after": "2025-01-01T00:00:00Z",
        "created_before": "2025-01-02T00:00:00Z",
    }
    other = {
        **good,
        "owner": "u2",
        "owner_scope": "u2",
        "limit": "6",
        "cursor": "",
        "created_after": "2025-01-01T00:00:01Z",
        "created_before": "2025-01-02T00:00:01Z",
    }
    multi = {k: [v] for k, v in good.items()}
    # The same value twice is one value.
    parse_list_query({**multi, name: [good[name], good[name]]}, "u1")
    with pytest.raises(RequestInvalid) as refused:
        parse_list_query({**multi, name: [good[name], other[name]]}, "u1")
    assert [e.as_json() for e in refused.value.errors] == [
        {"field": name, "message": "is given more than once, with different values"}
    ]


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("owner", "o" * 257, "must be at most 256 bytes of UTF-8 (it has 257)"),
        ("owner", "\u00e9" * 129, "must be at most 256 bytes of UTF-8 (it has 258)"),
        ("owner", "a\nb", "must not contain control characters"),
        ("kind", "k" * 129, "must be at most 128 bytes of UTF-8 (it has 129)"),
        ("state", "s" * 257, "must be at most 256 bytes of UTF-8 (it has 257)"),
        ("cursor", "c" * 257, "must be at most 256 bytes of UTF-8 (it has 257)"),
        ("limit", "1" * 5000, "must be at most 256 bytes of UTF-8 (it has 5000)"),
        ("created_after", "2" * 257, "must be at most 256 bytes of UTF-8 (it has 257)"),
        ("created_before", "0001-01-01T00:00:00Z", RANGE),
    ],
)
def test_every_query_parameter_is_bounded(name: str, value: str, reason: str) -> None:
    multi = {"owner": ["u1"], name: [value]}
    with pytest.raises(RequestInvalid) as refused:
        parse_list_query(multi, None)
    assert [e.as_json() for e in refused.value.errors] == [{"field": name, "message": reason}]


def test_a_repeatable_parameter_is_bounded_in_count() -> None:
    many = [f"k{i}" for i in range(limits.QUERY_VALUES_MAX + 1)]
    with pytest.raises(RequestInvalid) as refused:
        parse_list_query({"owner": ["u1"], "kind": many}, None)
    assert [e.as_json() for e in refused.value.errors] == [
        {"field": "kind", "message": f"may be given at most {limits.QUERY_VALUES_MAX} times"}
    ]
    query = parse_list_query({"owner": ["u1"], "kind": many[:-1]}, None)
    assert query.kinds == many[:-1]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("owner", "o" * 257, "must be at most 256 bytes of UTF-8 (it has 257)"),
        ("owner", "\U0001f600" * 256, "must be at most 256 bytes of UTF-8 (it has 1024)"),
        ("kind", "k" * 8001, "must be at most 128 bytes of UTF-8 (it has 8001)"),
        ("kind", "or\x00ders", "must not contain NUL characters"),
        ("dedupe_key", "d" * 257, "must be at most 256 bytes of UTF-8 (it has 257)"),
        ("dedupe_key", "a\rb", "must not contain control characters"),
        ("run_after", "9999-12-31T23:59:59-14:00", RANGE),
        ("run_after", "0001-01-01T00:00:00Z", RANGE),
        ("run_after", 20250101, HINT),
    ],
)
def test_every_field_of_a_new_job_is_bounded(field: str, value: object, reason: str) -> None:
    body = {"owner": "u1", "kind": "k", field: value}
    with pytest.raises(RequestInvalid) as refused:
        parse_new_job(body, DEFINITIONS, lambda _kind: ("csv",), None)
    assert [e.as_json() for e in refused.value.errors] == [{"field": field, "message": reason}]


def test_a_new_job_within_every_bound_is_taken() -> None:
    body = {
        "owner": "\U0001f600" * 64,
        "kind": "k",
        "dedupe_key": "d" * 256,
        "run_after": "2030-01-01T00:00:00+14:00",
        "params": {"a": ["x" * 1000]},
    }
    job = parse_new_job(body, DEFINITIONS, lambda _kind: ("csv",), "\U0001f600" * 64)
    assert job.run_after == datetime(2029, 12, 31, 10, tzinfo=UTC)


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


def test_params_are_measured_as_the_table_measures_them_numbers_in_full() -> None:
    """jsonb writes 1e300 as 301 digits: 250 of them are over 64 KiB in the table's
    CHECK though Python's JSON text of them is 2 KB."""
    problems = params_problems({"amounts": [1e300] * 250})

    [problem] = problems
    assert problem.field == "params"
    assert f"must be at most {limits.PARAMS_MAX_BYTES} bytes" in problem.message
    assert params_problems({"amounts": [1e300] * 200}) == []
