"""The asynchronous HTTP client (``AsyncClient``): ``Client``'s methods, awaited."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import IO, Any

import httpx

from exportd_client import _protocol as p
from exportd_client._errors import ApiError, DownloadFailed, WaitTimeout
from exportd_client._models import Job, Kind

JobId = uuid.UUID | str


class AsyncClient:
    """The daemon's HTTP API for asyncio; see ``Client`` for the arguments.
    Use it as an async context manager, or ``await aclose()``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        owner: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.owner = p.checked_scope(owner)
        self._token = token
        self._base = base_url.rstrip("/")
        # No default headers: the token goes to the daemon only (see Client).
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: p.Call, *, enqueue: bool = False) -> httpx.Response:
        response = await self._http.request(
            call.method,
            self._base + call.path,
            params=tuple(call.params + p.scope_query(self.owner)),
            json=call.body,
            headers=p.headers(self._token, self.owner),
        )
        if response.status_code >= 400:
            body = p.body_of(response.content)
            raise p.error_for(response.status_code, body, response.headers, enqueue=enqueue)
        return response

    async def enqueue(
        self,
        kind: str,
        params: Mapping[str, Any] | None = None,
        *,
        owner: str | None = None,
        format: str | None = None,
        priority: int | None = None,
        run_after: datetime | None = None,
        max_attempts: int | None = None,
        dedupe_key: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Job:
        """``Client.enqueue``."""
        call = p.new_job(
            kind,
            params,
            owner=owner,
            format=format,
            priority=priority,
            run_after=run_after,
            max_attempts=max_attempts,
            dedupe_key=dedupe_key,
            options=options,
        )
        return p.job_of(await self._send(call, enqueue=True))

    async def get(self, job_id: JobId) -> Job:
        """``Client.get``."""
        return p.job_of(await self._send(p.Call("GET", p.job_path(job_id))))

    async def list(
        self,
        *,
        owner: str | None = None,
        state: str | Iterable[str] = (),
        kind: str | Iterable[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = p.PAGE_SIZE,
    ) -> AsyncIterator[Job]:
        """``Client.list``, as an async iterator."""
        cursor: str | None = None
        while True:
            call = p.list_call(
                owner=owner,
                states=state,
                kinds=kind,
                created_after=created_after,
                created_before=created_before,
                page_size=page_size,
                cursor=cursor,
            )
            jobs, cursor = p.page_of(await self._send(call))
            for job in jobs:
                yield job
            if cursor is None:
                return

    async def cancel(self, job_id: JobId) -> Job:
        """``Client.cancel``."""
        response = await self._send(p.Call("POST", p.job_path(job_id, "/cancel")))
        return p.job_of(response)

    async def delete(self, job_id: JobId) -> Job:
        """``Client.delete``."""
        return p.job_of(await self._send(p.Call("DELETE", p.job_path(job_id))))

    async def retry(self, job_id: JobId) -> Job:
        """``Client.retry``."""
        response = await self._send(p.Call("POST", p.job_path(job_id, "/retry")))
        return p.job_of(response)

    async def download_url(self, job_id: JobId) -> str:
        """``Client.download_url``."""
        response = await self._send(p.Call("GET", p.job_path(job_id, "/download")))
        return p.location(response.status_code, str(response.url), response.headers.get("Location"))

    async def download(self, job_id: JobId, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        """``Client.download``; the file is written from a thread, a chunk at a
        time, so that the event loop never waits on the disk."""
        url = await self.download_url(job_id)
        if isinstance(dest, str | os.PathLike):
            part = p.part_path(os.fspath(dest))
            try:
                file = await asyncio.to_thread(open, part, "xb")
                with file:
                    written = await self._stream(url, file)
                await asyncio.to_thread(os.replace, part, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(os.unlink, part)
                raise
            return written
        return await self._stream(url, dest)

    async def _stream(self, url: str, file: IO[bytes]) -> int:
        written = 0
        try:
            async with self._http.stream("GET", url, follow_redirects=True) as response:
                if response.status_code != 200:
                    raise DownloadFailed(f"the bucket answered {response.status_code}", 0)
                async for chunk in response.aiter_bytes(p.CHUNK_BYTES):
                    await asyncio.to_thread(file.write, chunk)
                    written += len(chunk)
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"the transfer failed: {exc!r}", written) from exc
        return written

    async def kinds(self) -> builtins.list[Kind]:
        """``Client.kinds``."""
        return p.kinds_of(await self._send(p.Call("GET", "/v1/kinds")))

    # The same signature as Client.wait: the deadline is the poll's, not a cancellation.
    async def wait(self, job_id: JobId, timeout: float, *, listen: Any = None) -> Job:  # noqa: ASYNC109
        """``Client.wait``; ``listen`` is an asyncpg ``Connection`` or a psycopg
        ``AsyncConnection`` in autocommit mode, on the queue's database."""
        deadline = time.monotonic() + p.wait_seconds(timeout)
        if listen is not None:
            return await self._wait_listening(job_id, deadline, listen)
        pause = p.POLL_FIRST
        job: Job | None = None
        while True:
            job = await self._read(job_id, deadline, job)
            if job.finished:
                return p.outcome(job)
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(job)
            await asyncio.sleep(min(pause, left))
            pause = p.next_pause(pause)

    async def _read(self, job_id: JobId, deadline: float, seen: Job | None) -> Job:
        """``get``, for ``wait``: an outage (no answer, 502, 503, 504) is asked
        through, with backoff, until ``deadline``; then WaitTimeout with the job
        as last ``seen`` (the outage its cause), or the outage itself if the
        job was never seen."""
        pause = p.POLL_FIRST
        while True:
            try:
                return await self.get(job_id)
            except (httpx.TransportError, ApiError) as exc:
                if isinstance(exc, ApiError) and not p.outage(exc):
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    if seen is None:
                        raise
                    raise WaitTimeout(seen) from exc
                await asyncio.sleep(min(pause, left))
                pause = p.next_pause(pause)

    async def _wait_listening(self, job_id: JobId, deadline: float, conn: Any) -> Job:
        if hasattr(conn, "add_listener"):
            return await self._wait_asyncpg(job_id, deadline, conn)
        p.check_listener(conn.autocommit, conn.info.transaction_status)
        # A channel the application listens to already stays listened to.
        cursor = await conn.execute(p.LISTENING)
        cursor.row_factory = p.tuple_row
        listening = bool((await cursor.fetchone())[0])
        if not listening:
            await conn.execute("LISTEN exportd_events")
        try:
            job = await self._read(job_id, deadline, None)
            while not job.finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(job)
                # Closed on leaving: the generator holds the connection while open.
                notified = conn.notifies(timeout=p.listen_slice(left))
                async with contextlib.aclosing(notified) as notes:
                    async for note in notes:
                        if p.event_id(note.payload) == str(job.id):
                            break
                job = await self._read(job_id, deadline, job)
            return p.outcome(job)
        finally:
            if not listening:
                await conn.execute("UNLISTEN exportd_events")

    async def _wait_asyncpg(self, job_id: JobId, deadline: float, conn: Any) -> Job:
        if conn.is_in_transaction():
            # LISTEN inside a transaction takes effect at its commit only.
            raise ValueError("wait(listen=...) needs a connection outside any transaction")
        named = asyncio.Event()
        wanted = str(job_id)

        def heard(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            if p.event_id(payload) == wanted:
                named.set()

        await conn.add_listener("exportd_events", heard)
        try:
            # Listening first, then reading: an end between the two is seen.
            job = await self._read(job_id, deadline, None)
            wanted = str(job.id)
            while not job.finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(job)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(named.wait(), p.listen_slice(left))
                named.clear()
                job = await self._read(job_id, deadline, job)
            return p.outcome(job)
        finally:
            await conn.remove_listener("exportd_events", heard)
