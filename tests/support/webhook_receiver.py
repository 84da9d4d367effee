"""A real webhook receiver on 127.0.0.1 (aiohttp), for the webhook tests.

Every request is recorded and its signature verified with the Standard
Webhooks reference library (``standardwebhooks``), once per secret given, so
that each signature of a rotation is checked, never exportd's own code.
Answers are scripted per path: a status, ``HANG`` (never answers until the
receiver stops), or ``(status, headers[, body])``; once a path's script is
used up it answers 200.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook

HANG = "hang"


def new_secret(size: int = 32) -> str:
    """A fresh ``whsec_`` secret of ``size`` random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: list[bool]  # one per secret, in order

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    secrets: list[str]
    port: int = 0
    script: dict[str, list[Any]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str, *answers: Any) -> None:
        """Answer the next requests to ``path`` with ``answers``, in order."""
        self.script.setdefault(path, []).extend(answers)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                verified.append(True)
            except Exception:
                verified.append(False)
        self.received.append(Received(request.path, headers, body, verified))
        self.arrived.set()
        script = self.script.get(request.path) or []
        answer = script.pop(0) if script else 200
        if answer == HANG:
            await self._release.wait()
            return web.Response(status=200)
        if isinstance(answer, tuple):  # (status, headers) or (status, headers, body)
            body_out = answer[2] if len(answer) > 2 else b""
            return web.Response(status=answer[0], headers=answer[1], body=body_out)
        return web.Response(status=int(answer), text="ok" if answer < 300 else "no")

    async def wait_for(self, count: int, path: str = "/hook", timeout: float = 30.0) -> None:
        async def enough() -> None:
            while len(self.at(path)) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(enough(), timeout)


@contextlib.asynccontextmanager
async def receiving(secrets_: list[str], port: int = 0) -> AsyncIterator[Receiver]:
    """A receiver serving on 127.0.0.1 until the block ends; then every request it
    received must have verified with every secret."""
    receiver = Receiver(secrets_)
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    receiver.port = runner.addresses[0][1]
    try:
        yield receiver
    finally:
        receiver._release.set()
        await runner.cleanup()
    # Every request any test received carried a valid signature for each secret.
    refused = [(r.id, r.verified) for r in receiver.received if not all(r.verified)]
    assert refused == [], f"signatures the reference library refused: {refused}"
