"""A TCP forwarder whose listener can be shut and opened again on the same port.

It stands for an S3 endpoint that goes away: while shut, new connections are
refused and those open are cut, as when a server or its load balancer dies;
once open again, it listens on the same port. The server behind it keeps
its state (objects, open multipart uploads), which is what the fault suite
needs of both servers: moto keeps everything in memory and would lose it if
its process stopped, and rclone forgets open multipart uploads when it
stops, which would hide the uploads an outage leaves open. So one mechanism
serves both, and the uploads an outage orphans stay for maintenance to
abort.

Bytes pass through untouched (signatures stay valid). It runs on an event
loop of its own, in a thread, so that the test's own waits never slow the
traffic of the daemons.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

_CHUNK = 256 * 1024


class TcpGate:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self.port = _free_port()
        self.refusals = 0  # times it was shut

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        self.open()

    def open(self) -> None:
        self._call(self._open())

    def shut(self) -> None:
        """Refuse new connections and cut the open ones."""
        self._call(self._shut())
        self.refusals += 1

    def close(self) -> None:
        self._call(self._shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _open(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self.port, reuse_address=True
            )

    async def _shut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._connections):
            writer.transport.abort()
        self._connections.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._connections.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._connections.discard(w)
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def tcp_gate(upstream_url: str) -> Iterator[TcpGate]:
    host, _, port = upstream_url.removeprefix("http://").partition(":")
    gate = TcpGate(host, int(port.rstrip("/")))
    gate.start()
    try:
        yield gate
    finally:
        gate.close()
