"""An HTTP proxy in front of a real S3 server that can be told to fail or to hang.

It stands for a load balancer in front of S3 that answers 503 for a while:
the server behind it keeps its state (objects, open multipart uploads), so
a test sees what a 5xx outage leaves behind. Requests are forwarded as they
came, Host header included, so SigV4 signatures stay valid.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "content-length"}
)
_UNAVAILABLE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
    "<Message>Please reduce your request rate.</Message></Error>"
)


def commits_an_object(request: web.Request) -> bool:
    """CompleteMultipartUpload, or a PutObject (a PUT that is not a part's)."""
    if request.method == "POST" and "uploadId" in request.query:
        return True
    return request.method == "PUT" and "partNumber" not in request.query


@dataclass
class FailingProxy:
    upstream: str
    url: str = ""
    failing: bool = False
    refused: int = 0  # requests answered 503
    # Requests for which this is true are read, and never answered: a store
    # that accepted the request and hangs.
    hold: Callable[[web.Request], bool] | None = None
    held: int = 0
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.hold is not None and self.hold(request):
            self.held += 1
            await request.read()
            # Until the client gives up (aiohttp does not cancel a handler
            # whose client went away).
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.05)
            return web.Response(status=499)
        if self.failing:
            self.refused += 1
            return web.Response(status=503, text=_UNAVAILABLE, content_type="application/xml")
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        body = await request.read()
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.raw_path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, body=payload, headers=out)


@contextlib.asynccontextmanager
async def failing_proxy(upstream: str) -> AsyncIterator[FailingProxy]:
    proxy = FailingProxy(upstream)
    # No decompression and no cookie handling: bytes pass through as they are.
    async with aiohttp.ClientSession(
        auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        proxy._session = session
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        proxy.url = f"http://127.0.0.1:{port}"
        try:
            yield proxy
        finally:
            await runner.cleanup()
