"""The S3 client's deadlines, without a server: every operation has one, from the lease."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import pytest

from exportd.errors import ErrorKind
from exportd.s3.causes import classify_s3_error
from exportd.s3.client import DeadlineClient, open_s3_client
from tests.support.fixtures_s3 import S3Endpoint, s3_settings


class _Hangs:
    """A client boundary whose operations accept the request and never answer."""

    def __init__(self) -> None:
        self.calls = 0

    # As aiobotocore's operations are: a plain function returning a coroutine.
    def put_object(self, **kwargs: Any) -> Coroutine[Any, Any, dict[str, Any]]:
        self.calls += 1
        return self._never()

    async def _never(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def get_paginator(self, name: str) -> str:
        return f"paginator {name}"


async def test_every_operation_of_the_client_has_a_deadline() -> None:
    hangs = _Hangs()
    client = DeadlineClient(hangs, 0.05)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(TimeoutError) as caught:
        await client.put_object(Bucket="b", Key="k", Body=b"")
    assert loop.time() - began < 1.0
    assert hangs.calls == 1
    error = classify_s3_error(caught.value, operation="PutObject", bucket="b")
    assert error.kind is ErrorKind.STORAGE_UNAVAILABLE
    assert "did not answer PutObject on bucket 'b' within its deadline" in error.message
    # A body buys time at 1 MiB/s; synchronous attributes pass through.
    assert client.deadline(b"x" * 1024 * 1024) == pytest.approx(1.05)
    assert client.deadline() == 0.05
    assert client.get_paginator("list_multipart_uploads") == "paginator list_multipart_uploads"


async def test_the_settings_give_every_client_a_deadline_from_the_lease() -> None:
    endpoint = S3Endpoint("unused", "http://127.0.0.1:9", "exportdkey", "exportdsecret")
    async with contextlib.AsyncExitStack() as stack:
        client = await open_s3_client(s3_settings(endpoint, "bkt", lease_seconds=60), stack)
        assert client.request_seconds == 20.0
        client = await open_s3_client(s3_settings(endpoint, "bkt", lease_seconds=6), stack)
        assert client.request_seconds == 5.0, "never below 5 s"
        client = await open_s3_client(s3_settings(endpoint, "bkt", s3_request_timeout=2.5), stack)
        assert client.request_seconds == 2.5
