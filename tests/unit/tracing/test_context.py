"""W3C Trace Context as a job carries it: a malformed traceparent is none, a long
tracestate is cut by whole members, nothing a caller sends is stored unbounded."""

from __future__ import annotations

import json

import pytest

from exportd import limits
from exportd.tracing.context import (
    TraceParent,
    bounded_tracestate,
    from_document,
    parse_traceparent,
    trace_context,
)

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
VALID = f"00-{TRACE}-{SPAN}-01"


def test_a_valid_traceparent_is_read() -> None:
    assert parse_traceparent(VALID) == TraceParent(TRACE, SPAN, 1)
    assert parse_traceparent(VALID).header == VALID  # type: ignore[union-attr]
    # Unsampled is still a context to continue.
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-00") == TraceParent(TRACE, SPAN, 0)


def test_a_later_version_is_read_by_its_first_four_fields() -> None:
    parent = parse_traceparent(f"01-{TRACE}-{SPAN}-01-what-comes-later")
    assert parent == TraceParent(TRACE, SPAN, 1)
    assert parent.header == VALID  # written as the version this daemon speaks


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        ["00-..."],
        "",
        "garbage",
        VALID.upper(),  # W3C: lower-case hex only
        f"ff-{TRACE}-{SPAN}-01",  # version ff is invalid
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE[:-1]}-{SPAN}-01",
        f"00-{TRACE}-{SPAN}-1",
        f"00_{TRACE}_{SPAN}_01",
        "00-" + "a" * 100_000,  # huge: refused before any pattern runs over it
    ],
)
def test_a_malformed_traceparent_is_none(value: object) -> None:
    assert parse_traceparent(value) is None
    assert trace_context(value, "vendor=1") is None


def test_a_tracestate_is_kept_beside_a_valid_traceparent() -> None:
    assert trace_context(VALID, "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE") == {
        "traceparent": VALID,
        "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    }
    assert trace_context(VALID, "") == {"traceparent": VALID}
    assert trace_context(VALID, None) == {"traceparent": VALID}


def test_a_long_tracestate_loses_long_members_first_then_from_the_end() -> None:
    long = "big=" + "x" * 200
    members = [f"m{i}=" + "y" * 40 for i in range(20)]
    state = bounded_tracestate(",".join([members[0], long, *members[1:]]))
    assert state is not None
    assert len(state) <= limits.TRACESTATE_MAX_CHARS
    kept = state.split(",")
    assert "big=" not in state
    assert kept == members[: len(kept)]
    assert len(kept) == (limits.TRACESTATE_MAX_CHARS + 1) // 44


@pytest.mark.parametrize(
    "value",
    [
        "a=b\x00",
        "a=ü",
        7,
        ["a=b"],
        " , ,",
        "A=b",
        "a",
        "a=",
        "a=b,=c",
        "a=b=c",
        "1=b",
        "a=1,b=2,a=3",
    ],
)
def test_a_tracestate_that_is_no_printable_ascii_list_is_dropped(value: object) -> None:
    assert bounded_tracestate(value) is None


def test_w3c_keys_and_values_are_kept() -> None:
    state = "tenant1@system=x y,a_b-c*d/e=!~,z9=1"
    assert bounded_tracestate(state) == state


def test_at_most_32_members() -> None:
    state = bounded_tracestate(",".join(f"k{i}=v" for i in range(40)))
    assert state is not None
    assert len(state.split(",")) == 32


def test_a_stored_document_is_read_as_it_would_be_written() -> None:
    assert from_document({"traceparent": VALID, "tracestate": "a=b", "other": "x"}) == {
        "traceparent": VALID,
        "tracestate": "a=b",
    }
    stored: object
    for stored in (None, [], "x", {"traceparent": 1}, {"tracestate": "a=b"}):
        assert from_document(stored) is None


def test_whatever_headers_carry_the_document_fits_the_column() -> None:
    worst = trace_context(VALID, ",".join(f"k{i}=" + "~" * 200 for i in range(100)))
    assert worst is not None
    assert len(json.dumps(worst).encode()) <= limits.TRACE_CONTEXT_MAX_BYTES


def test_a_huge_tracestate_never_keeps_a_member_cut_short() -> None:
    # Only the first TRACESTATE_MAX_CHARS * 8 characters are read: the member
    # they end in is cut, and what is left of it must not pass for a whole one.
    read = limits.TRACESTATE_MAX_CHARS * 8
    sent = [f"k{i}=" + "v" * 250 for i in range(read // 255 + 1)]
    sent[read // 255] = "short=" + "w" * 250  # the member the read ends in
    state = bounded_tracestate(",".join(sent))
    assert state is None or all(m in sent for m in state.split(","))
