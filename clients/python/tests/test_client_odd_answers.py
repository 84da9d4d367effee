"""The client against answers a daemon never gives but a proxy, a load balancer or
a bucket may: HTML error pages, empty bodies, odd Retry-After headers, a download
redirected to another host, a transfer cut halfway. A real HTTP server on
loopback plays them (``Scripted``), and records what the client sent it."""

from __future__ import annotations

import email.utils
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from exportd_client import (
    ApiError,
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    ExportdError,
    InvalidAnswer,
    NotFound,
    RateLimited,
    WaitTimeout,
)

JOB_ID = uuid.uuid4()


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Bytes announced by Content-Length beyond those sent: the transfer is cut.
    short_by: int = 0


@dataclass
class Scripted:
    """A loopback HTTP server answering each path as told, and what it was sent."""

    host: str
    port: int
    # A list is answered in turn, its last answer repeated.
    answers: dict[str, Answer | list[Answer]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _serve(host: str) -> Iterator[Scripted]:
    server = http.server.ThreadingHTTPServer((host, 0), _Handler)
    scripted = Scripted(host, server.server_address[1])
    server.scripted = scripted  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield scripted
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        scripted: Scripted = self.server.scripted  # type: ignore[attr-defined]
        path = self.path.split("?")[0]
        scripted.seen.append((path, dict(self.headers.items())))
        answer = scripted.answers.get(path, Answer(404, b"{}"))
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body) + answer.short_by))
        if answer.short_by:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer.body)
        self.wfile.flush()
        if answer.short_by:
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[Scripted]:
    """What the client takes for the daemon (or the proxy before it)."""
    yield from _serve("127.0.0.1")


@pytest.fixture
def bucket() -> Iterator[Scripted]:
    """Another host: ``localhost``, where download URLs point."""
    yield from _serve("localhost")


def _job_path(suffix: str = "") -> str:
    return f"/v1/jobs/{JOB_ID}{suffix}"


@pytest.mark.parametrize(
    "answer",
    [
        Answer(502, b"<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"}),
        Answer(400, b"<html>nginx</html>", {"Content-Type": "text/html"}),
        Answer(500, b""),
        Answer(503, b"[1, 2]", {"Retry-After": "7"}),
    ],
)
def test_an_error_page_that_is_not_the_daemons_is_an_api_error(
    api: Scripted, answer: Answer
) -> None:
    api.answers[_job_path()] = answer
    with Client(api.url, "t") as client, pytest.raises(ApiError) as raised:
        client.get(JOB_ID)
    assert raised.value.status == answer.status
    assert raised.value.body == {}


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, b""),
        Answer(200, b"<html>captive portal</html>", {"Content-Type": "text/html"}),
        Answer(200, b"[]"),
        Answer(200, b'{"id": "not all of a job"}'),
        Answer(301, b"", {"Location": "https://elsewhere.example/"}),
    ],
)
async def test_an_answer_that_is_not_a_job_is_an_invalid_answer(
    api: Scripted, answer: Answer
) -> None:
    api.answers[_job_path()] = answer
    with Client(api.url, "t") as client, pytest.raises(InvalidAnswer) as raised:
        client.get(JOB_ID)
    assert raised.value.status == answer.status
    async with AsyncClient(api.url, "t") as aclient:
        with pytest.raises(InvalidAnswer):
            await aclient.get(JOB_ID)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("120", 120.0),
        ("garbage", None),
        ("inf", None),
        ("nan", None),
        ("1e999", None),
        ("-5", None),
        ("Mon, 01 Jan 1990 00:00:00 GMT", 0.0),
    ],
)
def test_retry_after_is_seconds_or_none(
    api: Scripted, header: str | None, expected: float | None
) -> None:
    headers = {} if header is None else {"Retry-After": header}
    api.answers["/v1/jobs"] = Answer(429, b'{"error": "quota_exceeded"}', headers)
    with Client(api.url, "t") as client, pytest.raises(RateLimited) as raised:
        client.enqueue("ledger", owner="acme")
    assert raised.value.retry_after == expected


def test_retry_after_as_an_http_date_is_the_seconds_until_then(api: Scripted) -> None:
    then = datetime.now(UTC) + timedelta(hours=2)
    header = email.utils.format_datetime(then, usegmt=True)
    api.answers["/v1/jobs"] = Answer(429, b"{}", {"Retry-After": header})
    with Client(api.url, "t") as client, pytest.raises(RateLimited) as raised:
        client.enqueue("ledger", owner="acme")
    assert raised.value.retry_after is not None
    assert 3600 < raised.value.retry_after <= 7200


def test_a_download_url_answered_without_a_redirect_is_an_invalid_answer(
    api: Scripted,
) -> None:
    api.answers[_job_path("/download")] = Answer(200, b'{"download_url": "x"}')
    with Client(api.url, "t") as client, pytest.raises(InvalidAnswer):
        client.download_url(JOB_ID)


def test_the_token_never_goes_to_the_host_a_download_points_at(
    api: Scripted, bucket: Scripted, tmp_path: Path
) -> None:
    api.answers[_job_path("/download")] = Answer(
        302,
        b'{"download_url": "ignored"}',  # a body beside the redirect is not read
        {
            "Location": f"{bucket.url}/bucket/key?X-Amz-Signature=abc",
            "Content-Type": "application/json",
        },
    )
    # The bucket redirects once more (as S3 does to a region): followed, still without the token.
    bucket.answers["/bucket/key"] = Answer(307, b"", {"Location": f"{bucket.url}/region/key"})
    bucket.answers["/region/key"] = Answer(200, b"id,amount\n1,9.5\n")
    with Client(api.url, "secret-token", owner="acme") as client:
        assert client.download(JOB_ID, tmp_path / "export.csv") == 16
    assert (tmp_path / "export.csv").read_bytes() == b"id,amount\n1,9.5\n"
    assert [path for path, _ in bucket.seen] == ["/bucket/key", "/region/key"]
    for _, headers in bucket.seen:
        sent = {name.lower() for name in headers}
        assert not sent & {"authorization", "x-exportd-owner", "cookie"}, headers
    [(_, to_api)] = api.seen
    assert to_api["Authorization"] == "Bearer secret-token"


def test_a_relative_download_location_is_the_apis(api: Scripted, tmp_path: Path) -> None:
    api.answers[_job_path("/download")] = Answer(302, b"", {"Location": "/files/key"})
    api.answers["/files/key"] = Answer(200, b"abc")
    with Client(api.url, "t") as client:
        assert client.download_url(JOB_ID) == f"{api.url}/files/key"
        assert client.download(JOB_ID, tmp_path / "x") == 3


@pytest.mark.parametrize("failure", ["cut", "403"])
async def test_a_download_that_fails_halfway_keeps_the_file_that_was_there(
    api: Scripted, bucket: Scripted, tmp_path: Path, failure: str
) -> None:
    api.answers[_job_path("/download")] = Answer(302, b"", {"Location": f"{bucket.url}/key"})
    if failure == "cut":
        bucket.answers["/key"] = Answer(200, b"half of it", short_by=1000)
    else:
        bucket.answers["/key"] = Answer(403, b"<Error><Code>AccessDenied</Code></Error>")
    dest = tmp_path / "export.csv"
    dest.write_bytes(b"last month's export")
    with Client(api.url, "t") as client, pytest.raises(ExportdError):
        client.download(JOB_ID, dest)
    assert dest.read_bytes() == b"last month's export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]
    async with AsyncClient(api.url, "t") as aclient:
        with pytest.raises(ExportdError):
            await aclient.download(JOB_ID, dest)
    assert dest.read_bytes() == b"last month's export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]


def _job(state: str) -> Answer:
    job = {
        "id": str(JOB_ID),
        "owner": "acme",
        "kind": "ledger",
        "params": {},
        "format": "csv",
        "state": state,
        "created_at": "2025-01-01T00:00:00+00:00",
    }
    return Answer(200, json.dumps(job).encode())


@pytest.mark.parametrize("timeout", [float("nan"), -1.0, 0.0])
def test_wait_takes_a_number_of_seconds(api: Scripted, timeout: float) -> None:
    api.answers[_job_path()] = _job("pending")
    with Client(api.url, "t") as client:
        if timeout != timeout:
            with pytest.raises(ValueError, match="timeout"):
                client.wait(JOB_ID, timeout=timeout)
        else:  # no time left: asked once, then given up
            with pytest.raises(TimeoutError):
                client.wait(JOB_ID, timeout=timeout)


@pytest.mark.parametrize(
    ("status", "body", "raised"),
    [
        (400, {"errors": "nope"}, BadRequest),
        (400, {"errors": [{"message": "no field"}, 1, {"field": 2}]}, BadRequest),
        (409, {"error": "duplicate", "job": {"id": "not a job"}}, Conflict),
        (429, {"error": "quota_exceeded", "retry_at": "someday"}, RateLimited),
        (429, {"error": "quota_exceeded", "retry_at": 17}, RateLimited),
    ],
)
def test_an_error_body_of_odd_shape_is_still_its_typed_error(
    api: Scripted, status: int, body: dict[str, object], raised: type[ApiError]
) -> None:
    api.answers["/v1/jobs"] = Answer(status, json.dumps(body).encode())
    with Client(api.url, "t") as client, pytest.raises(raised) as caught:
        client.enqueue("ledger", owner="acme")
    assert caught.value.status == status
    if isinstance(caught.value, BadRequest):
        assert caught.value.problems  # every problem, as far as it can be read
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_at is None


async def test_wait_outlasts_an_outage_of_the_daemon_or_its_proxy(api: Scripted) -> None:
    outage = [
        _job("processing"),
        Answer(503, b'{"error": "unavailable"}', {"Retry-After": "1"}),
        Answer(502, b"<html>Bad Gateway</html>"),
        Answer(504, b""),
        _job("completed"),
    ]
    api.answers[_job_path()] = list(outage)
    with Client(api.url, "t") as client:
        assert client.wait(JOB_ID, timeout=60).state == "completed"
    api.answers[_job_path()] = list(outage)
    async with AsyncClient(api.url, "t") as aclient:
        assert (await aclient.wait(JOB_ID, timeout=60)).state == "completed"


def test_wait_gives_up_on_an_outage_at_its_deadline(api: Scripted) -> None:
    api.answers[_job_path()] = [_job("processing"), Answer(503, b"{}")]
    with Client(api.url, "t") as client, pytest.raises(WaitTimeout) as timed_out:
        client.wait(JOB_ID, timeout=0.3)
    assert timed_out.value.job.state == "processing"  # as last seen
    assert isinstance(timed_out.value.__cause__, ApiError)
    # Never seen at all: the outage itself.
    api.answers[_job_path()] = Answer(503, b"{}")
    with Client(api.url, "t") as client, pytest.raises(ApiError) as unavailable:
        client.wait(JOB_ID, timeout=0)
    assert unavailable.value.status == 503
    # An answer about the job is not an outage: no waiting it out.
    api.answers[_job_path()] = Answer(404, b'{"error": "not_found"}')
    with Client(api.url, "t") as client, pytest.raises(NotFound):
        client.wait(JOB_ID, timeout=60)
