"""Hostile and careless requests: every one is answered 4xx with the reason, never 500.

Bytes that aiohttp's client will not send (headers that are not UTF-8) go over
a raw socket. No request here reaches the bucket, so one S3 server serves them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from multidict import CIMultiDict
from structlog.testing import capture_logs

from exportd import limits
from tests.support.daemon_harness import TOKEN
from tests.support.fixtures_api import AUTH, call
from tests.support.fixtures_s3 import S3Endpoint
from tests.support.helpers import insert_job

RANGE = "must lie from 1970-01-01T00:00:00+00:00 up to (not including) 9999-01-01T00:00:00+00:00"


@pytest.fixture
def s3_endpoint(rclone_server: S3Endpoint) -> S3Endpoint:
    return rclone_server


async def raw_exchange(base: str, head: bytes) -> tuple[int, list[bytes], bytes]:
    """One HTTP/1.1 request written byte for byte: the status, header lines and body."""
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    header_block, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *headers = header_block.split(b"\r\n")
    return int(status_line.split()[1]), headers, payload


async def raw_request(base: str, head: bytes) -> tuple[int, dict[str, Any]]:
    """The status and the JSON answer to a request written byte for byte."""
    status, _, payload = await raw_exchange(base, head)
    return status, json.loads(payload)


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> bool:
    return not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def errors_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in body["errors"]]


# --- Headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer \xff\xfe\x80",  # not UTF-8: was a 500 and a logged traceback
        b"\xc3\x28 token",
        b"Bearer " + b"x" * 8000,
        b"Bearer",
        b"",
    ],
    ids=["not-utf8", "broken-scheme", "long", "no-token", "empty"],
)
async def test_any_authorization_header_that_is_no_token_is_401(
    api: str, authorization: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    head = b"GET /v1/kinds HTTP/1.1\r\nHost: x\r\nAuthorization: " + authorization
    with capture_logs() as logs:
        status, body = await raw_request(api, head)
    assert (status, body["error"]) == (401, "unauthorized")
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    assert no_tracebacks(caplog)


@pytest.mark.parametrize(
    "header",
    [
        b"Authorization: Bearer " + TOKEN.encode() + b"\x01",
        b"Authorization: Bearer " + b"x" * 9000,
        b"Authorization: Bearer " + TOKEN.encode() + b"x" * 9000,
        b"X-Exportd-Owner: " + b"o" * 9000,
        b"X-Request-Id: a\x01b",
    ],
    ids=[
        "control-after-token",
        "over-8190",
        "token-then-over-8190",
        "scope-over-8190",
        "control-in-request-id",
    ],
)
async def test_a_header_http_does_not_allow_is_400_from_the_parser_in_one_line(
    api: str, header: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp refuses these before any middleware: a 400 of its own, logged as one
    warning without the header (it may hold a token), never a traceback."""
    with capture_logs() as logs:
        status, _, _ = await raw_exchange(api, b"GET /v1/kinds HTTP/1.1\r\nHost: x\r\n" + header)
    assert status == 400
    assert [(e["event"], e["log_level"]) for e in logs] == [("http_malformed_request", "warning")]
    assert TOKEN not in str(logs)
    assert no_tracebacks(caplog)


async def test_a_scope_header_that_is_not_utf8_or_too_long_is_400(api: str) -> None:
    for value, reason in (
        (b"u\xff1", "must be valid Unicode text"),
        (b"o" * 8000, "must be at most 256 bytes of UTF-8 (it has 8000)"),
        (b"\xf0\x9f\x98\x80" * 65, "must be at most 256 bytes of UTF-8 (it has 260)"),
        (b"a\tb", "must not contain control characters"),
    ):
        head = (
            b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + AUTH["Authorization"].encode()
            + b"\r\nX-Exportd-Owner: "
            + value
        )
        status, body = await raw_request(api, head)
        assert (status, errors_of(body)) == (400, [("owner_scope", reason)]), value[:20]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("owner=caf%E9", "owner"),  # Latin-1 "café": was served as the owner "caf\ufffd"
        ("owner=u1&owner_scope=%FF", "owner_scope"),
        ("owner=u1&kind=%C3%28", "kind"),
        ("owner=u1&%FF=1", "%FF"),
    ],
)
async def test_a_query_value_that_is_not_utf8_is_400_never_read_as_another_value(
    api: str, pool: asyncpg.Pool, query: str, field: str
) -> None:
    # Two different Latin-1 owners would both have been read as one replacement character.
    await insert_job(pool, owner="caf\ufffd")
    for path in ("/v1/jobs", "/v1/kinds"):
        status, body, _ = await call("GET", f"{api}{path}?{query}", AUTH)
        assert (status, errors_of(body)) == (400, [(field, "must be valid UTF-8 text")]), path
    # A probe reads no parameter: whatever a load balancer appends, it answers.
    status, _, _ = await call("GET", f"{api}/healthz?{query}", {})
    assert status == 200


@pytest.mark.parametrize(
    "raw",
    [
        b'{"owner": "u1", "owner": "u2", "kind": "everything"}',
        b'{"owner": "u1", "kind": "everything", "params": {"since": 1, "since": 2}}',
        b'{"owner": "u1", "kind": "everything", "owner": "u1"}',
    ],
    ids=["two-owners", "in-params", "same-value-twice"],
)
async def test_a_body_repeating_a_key_is_400_never_the_last_taken(
    api: str, pool: asyncpg.Pool, raw: bytes
) -> None:
    """A proxy that reads the first owner and a server that keeps the last would
    disagree about whose job this is: a repeated key is refused, wherever it is."""
    headers = {**AUTH, "Content-Type": "application/json"}
    status, body, _ = await call("POST", f"{api}/v1/jobs", headers, data=raw)
    assert status == 400
    [(field, message)] = errors_of(body)
    assert field == ""
    assert "occurs more than once in one object" in message, message
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 0


async def test_a_request_id_is_echoed_only_when_sane(api: str) -> None:
    for value in (b"r\xffid", b"r" * 129, b"r1\r\nX-Request-Id: r2", b"r1, r2"):
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + value
        _, headers, _ = await raw_exchange(api, head)
        echoed = [
            line.split(b":", 1)[1].strip()
            for line in headers
            if line.lower().startswith(b"x-request-id:")
        ]
        assert len(echoed) == 1
        assert echoed[0] not in (value, b"r1", b"r2")
        assert len(echoed[0]) == 32  # a fresh id


async def test_two_different_owner_scopes_are_refused_never_the_first_served(
    api: str, pool: asyncpg.Pool
) -> None:
    await insert_job(pool, owner="u1")
    await insert_job(pool, owner="u2")
    two_headers = CIMultiDict([*AUTH.items(), ("X-Exportd-Owner", "u1"), ("X-Exportd-Owner", "u2")])
    for url, headers in (
        (f"{api}/v1/jobs", two_headers),
        (f"{api}/v1/jobs?owner_scope=u1&owner_scope=u2", AUTH),
        (f"{api}/v1/jobs?owner_scope=u2", {**AUTH, "X-Exportd-Owner": "u1"}),
    ):
        status, body, _ = await call("GET", url, headers)  # type: ignore[arg-type]
        assert status == 400, body
        assert [f for f, _ in errors_of(body)] == ["owner_scope"]
        assert body["errors"][0]["message"].startswith("names 2 different owners")
    for job_id in (uuid.uuid4(),):
        status, body, _ = await call("GET", f"{api}/v1/jobs/{job_id}", two_headers)  # type: ignore[arg-type]
        assert (status, body["error"]) == (400, "invalid_request")
    # The same owner twice is one owner.
    same = CIMultiDict([*AUTH.items(), ("X-Exportd-Owner", "u1"), ("X-Exportd-Owner", "u1")])
    status, body, _ = await call("GET", f"{api}/v1/jobs?owner_scope=u1", same)  # type: ignore[arg-type]
    assert (status, {j["owner"] for j in body["jobs"]}) == (200, {"u1"})


async def test_any_single_valued_query_parameter_given_twice_differently_is_400(api: str) -> None:
    status, body, _ = await call(
        "GET", f"{api}/v1/jobs?owner=u1&owner=u2&limit=1&limit=2&limit=1", AUTH
    )
    assert status == 400
    assert errors_of(body) == [
        ("owner", "is given more than once, with different values"),
        ("limit", "is given more than once, with different values"),
    ]


# --- Bodies ---------------------------------------------------------------------------------


async def test_a_body_nested_a_thousand_levels_is_400_not_500(api: str) -> None:
    for payload in (
        b"[" * 1000 + b"]" * 1000,
        b'{"kind": "everything", "owner": "u1", "params": ' + b"{" * 1000 + b"}" * 1000 + b"}",
    ):
        status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, data=payload)
        assert status == 400, body
        assert errors_of(body) == [
            (
                "",
                "the body nests arrays and objects deeper than "
                f"{limits.REQUEST_JSON_MAX_DEPTH} levels",
            )
        ]


async def test_a_body_over_the_bound_is_413(api: str) -> None:
    payload = json.dumps({"kind": "everything", "owner": "u1", "params": {"a": "x" * 300_000}})
    status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, data=payload.encode())
    assert (status, body["error"]) == (413, "request_entity_too_large")
    assert str(limits.REQUEST_BODY_MAX_BYTES) in body["message"]


@pytest.mark.parametrize(
    ("job", "errors"),
    [
        (
            {"owner": "o" * 8001},
            [("owner", "must be at most 256 bytes of UTF-8 (it has 8001)")],
        ),
        (
            {"owner": "\U0001f600" * 256},  # 256 characters, 1,024 bytes
            [("owner", "must be at most 256 bytes of UTF-8 (it has 1024)")],
        ),
        (
            {"kind": "k" * 8001},
            [("kind", "must be at most 128 bytes of UTF-8 (it has 8001)")],
        ),
        (
            {"dedupe_key": "d" * 300},
            [("dedupe_key", "must be at most 256 bytes of UTF-8 (it has 300)")],
        ),
        ({"run_after": "9999-12-31T23:59:59-14:00"}, [("run_after", RANGE)]),
        ({"run_after": "0001-01-01T00:00:00Z"}, [("run_after", RANGE)]),
        ({"kind": "orders", "params": {"since": "2025-01-01\u0000"}}, None),
    ],
    ids=[
        "owner-long",
        "owner-emoji",
        "kind-long",
        "dedupe-long",
        "run-after-max",
        "run-after-min",
        "params-nul",
    ],
)
async def test_a_job_out_of_bounds_is_400_with_the_reason(
    api: str, pool: asyncpg.Pool, job: dict[str, Any], errors: list[tuple[str, str]] | None
) -> None:
    status, body, _ = await call(
        "POST", f"{api}/v1/jobs", AUTH, json={"owner": "u1", "kind": "everything", **job}
    )
    assert status == 400, body
    if errors is not None:
        assert errors_of(body) == errors
    else:
        assert "params.since" in [f for f, _ in errors_of(body)]
    assert await pool.fetchval("SELECT count(*) FROM exportd.jobs") == 0


async def test_numbers_postgres_cannot_store_are_400(api: str) -> None:
    for number in (b"1e400", b"NaN", b"-Infinity"):
        payload = b'{"owner": "u1", "kind": "everything", "priority": ' + number + b"}"
        status, body, _ = await call("POST", f"{api}/v1/jobs", AUTH, data=payload)
        assert (status, body["error"]) == (400, "invalid_request"), number


# --- Timestamps -----------------------------------------------------------------------------


async def test_every_timestamp_answered_carries_an_offset_whatever_the_row_holds(
    api: str, pool: asyncpg.Pool
) -> None:
    job_id = await insert_job(pool, owner="u1")
    await pool.execute(
        "UPDATE exportd.jobs SET run_after = '-infinity', lease_expires_at = 'infinity',"
        " created_at = '0001-01-01 00:00:00+00', started_at = '1900-01-01 00:00:00+00'"
        " WHERE id = $1",
        job_id,
    )
    status, doc, _ = await call("GET", f"{api}/v1/jobs/{job_id}", AUTH)
    assert status == 200
    assert doc["run_after"] == "0001-01-01T00:00:00+00:00"
    assert doc["lease_expires_at"] == "9999-12-31T23:59:59.999999+00:00"
    assert doc["created_at"] == "0001-01-01T00:00:00+00:00"
    assert doc["started_at"] == "1900-01-01T00:00:00+00:00"
    status, page, _ = await call("GET", f"{api}/v1/jobs?owner=u1", AUTH)
    assert (status, page["jobs"][0]["run_after"]) == (200, "0001-01-01T00:00:00+00:00")


async def test_created_after_out_of_range_is_400(api: str) -> None:
    status, body, _ = await call(
        "GET", f"{api}/v1/jobs?owner=u1&created_after=9999-12-31T23:59:59-14:00", AUTH
    )
    assert (status, errors_of(body)) == (400, [("created_after", RANGE)])
