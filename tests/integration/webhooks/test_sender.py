"""One webhook request against receivers that answer what no HTTP server should."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from exportd.webhooks.sender import post

URL_PATH = "/hooks/in?token=s3cr3t-path-token"


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 2\xff0 OK\r\n\r\n",  # a bad status line
        b"\xff\xfe\x00garbage\r\n\r\n",  # no status line at all
    ],
)
async def test_an_unparsable_answer_never_quotes_the_url_s_path_or_credentials(
    answer: bytes,
) -> None:
    # aiohttp's error quotes the URL as it normalised it (without the
    # credentials), so replacing the configured URL's exact text missed it:
    # the receiver's token went to the logs, the table and GET /v1/jobs/{id}.
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            sent = await post(
                session,
                f"http://user:pa55word@127.0.0.1:{port}{URL_PATH}",
                [b"k" * 32],
                "msg_1",
                b"{}",
                deadline=2,
            )
    finally:
        server.close()
    error = sent.answer.error or ""
    assert sent.answer.status is None
    assert "Bad status line" in error
    for secret in ("s3cr3t", "token", "/hooks", "pa55word", "user"):
        assert secret not in error, error
    assert f"http://127.0.0.1:{port}" in error
