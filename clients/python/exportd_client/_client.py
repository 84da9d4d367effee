"""The synchronous HTTP client (``Client``)."""

from __future__ import annotations

import builtins
import contextlib
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import IO, Any

import httpx

from exportd_client import _protocol as p
from exportd_client._errors import ApiError, DownloadFailed, WaitTimeout
from exportd_client._models import Job, Kind

JobId = uuid.UUID | str


class Client:
    """The daemon's HTTP API, synchronously.

    ``base_url`` is the daemon's (``http://exportd:8080``), ``token`` one of its
    ``EXPORTD_API_TOKENS``. With ``owner``, every request acts for that owner
    alone (``X-Exportd-Owner``): other owners' jobs are unknown (NotFound) and
    ``enqueue`` and ``list`` default to it; an owner the daemon would refuse
    (over 256 bytes of UTF-8, empty, a control character) is InvalidJob here.
    ``timeout`` bounds each request's
    connect, read and write, in seconds. Use it as a context manager, or
    ``close()`` it.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        owner: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.owner = p.checked_scope(owner)
        self._token = token
        self._base = base_url.rstrip("/")
        # No default headers: the token goes to the daemon only, never to the
        # bucket a download URL points at.
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: p.Call, *, enqueue: bool = False) -> httpx.Response:
        response = self._http.request(
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

    def enqueue(
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
        """Enqueue a job (``POST /v1/jobs``) and return it, pending.

        Raises InvalidJob (checked here) or BadRequest (by the daemon), each
        with every problem; DuplicateJob with the live job of the same
        ``dedupe_key``; RateLimited over the kind's quota.
        """
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
        return p.job_of(self._send(call, enqueue=True))

    def get(self, job_id: JobId) -> Job:
        """The job, with its runs and, when completed, a fresh ``download_url``."""
        return p.job_of(self._send(p.Call("GET", p.job_path(job_id))))

    def list(
        self,
        *,
        owner: str | None = None,
        state: str | Iterable[str] = (),
        kind: str | Iterable[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = p.PAGE_SIZE,
    ) -> Iterator[Job]:
        """Every job of ``owner`` (default: the client's owner scope), newest
        first, in any of ``state`` and ``kind`` (empty: all), fetched a keyset
        page of ``page_size`` at a time as the iteration goes."""
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
            jobs, cursor = p.page_of(self._send(call))
            yield from jobs
            if cursor is None:
                return

    def cancel(self, job_id: JobId) -> Job:
        """``POST /v1/jobs/{id}/cancel``: cancel a pending or processing job;
        ``Conflict`` (code ``not_cancellable``, with ``state``) once it has ended.
        Never deletes a completed export, however close the cancel comes to the
        job's completion (``delete`` does that)."""
        return p.job_of(self._send(p.Call("POST", p.job_path(job_id, "/cancel"))))

    def delete(self, job_id: JobId) -> Job:
        """``DELETE /v1/jobs/{id}``: cancel a live job, or delete a completed
        export's file (the job becomes ``expired``). Conflict otherwise."""
        return p.job_of(self._send(p.Call("DELETE", p.job_path(job_id))))

    def retry(self, job_id: JobId) -> Job:
        """Run a failed or cancelled job again; Conflict in any other state."""
        return p.job_of(self._send(p.Call("POST", p.job_path(job_id, "/retry"))))

    def download_url(self, job_id: JobId) -> str:
        """A fresh presigned URL of a completed export. Gone once it expired,
        Conflict while the job has not completed."""
        response = self._send(p.Call("GET", p.job_path(job_id, "/download")))
        return p.location(response.status_code, str(response.url), response.headers.get("Location"))

    def download(self, job_id: JobId, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        """Stream a completed export into ``dest``; the number of bytes written.

        ``dest`` is a path or a binary file open for writing. A path is written
        through a temporary file beside it, then renamed: it is replaced only
        by a whole export, and a transfer that fails leaves it as it was. A
        file object is written from its position; on failure it holds what was
        written so far (``DownloadFailed.written`` bytes). The URL is fetched
        without the token or the owner scope (it is presigned), following the
        bucket's redirects. Raises Gone, Conflict, NotFound, DownloadFailed.
        """
        url = self.download_url(job_id)
        if isinstance(dest, str | os.PathLike):
            part = p.part_path(os.fspath(dest))
            try:
                with open(part, "xb") as file:
                    written = self._stream(url, file)
                os.replace(part, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(part)
                raise
            return written
        return self._stream(url, dest)

    def _stream(self, url: str, file: IO[bytes]) -> int:
        written = 0
        try:
            with self._http.stream("GET", url, follow_redirects=True) as response:
                if response.status_code != 200:
                    raise DownloadFailed(f"the bucket answered {response.status_code}", 0)
                for chunk in response.iter_bytes(p.CHUNK_BYTES):
                    file.write(chunk)
                    written += len(chunk)
        except httpx.HTTPError as exc:
            raise DownloadFailed(f"the transfer failed: {exc!r}", written) from exc
        return written

    def kinds(self) -> builtins.list[Kind]:
        """The export kinds the daemon runs, with their params' JSON Schemas."""
        return p.kinds_of(self._send(p.Call("GET", "/v1/kinds")))

    def wait(self, job_id: JobId, timeout: float, *, listen: Any = None) -> Job:
        """The job once it completed; ExportFailed (with ``error_kind``) when it
        ended otherwise; WaitTimeout after ``timeout`` seconds.

        Polls with backoff (POLL_FIRST, growing to POLL_MAX seconds), or, given
        ``listen``, a psycopg ``Connection`` in autocommit mode on the queue's
        database, sleeps until ``exportd_events`` names the job (reading the job
        at least every LISTEN_RECHECK seconds, should a notification be lost).
        ``timeout`` is in seconds; 0 or less reads the job once; NaN is a
        ValueError. NotFound when the job is deleted meanwhile.
        """
        deadline = time.monotonic() + p.wait_seconds(timeout)
        if listen is not None:
            return self._wait_listening(job_id, deadline, listen)
        pause = p.POLL_FIRST
        job: Job | None = None
        while True:
            job = self._read(job_id, deadline, job)
            if job.finished:
                return p.outcome(job)
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(job)
            time.sleep(min(pause, left))
            pause = p.next_pause(pause)

    def _read(self, job_id: JobId, deadline: float, seen: Job | None) -> Job:
        """``get``, for ``wait``: an outage (no answer, 502, 503, 504) is asked
        through, with backoff, until ``deadline``; then WaitTimeout with the job
        as last ``seen`` (the outage its cause), or the outage itself if the
        job was never seen."""
        pause = p.POLL_FIRST
        while True:
            try:
                return self.get(job_id)
            except (httpx.TransportError, ApiError) as exc:
                if isinstance(exc, ApiError) and not p.outage(exc):
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    if seen is None:
                        raise
                    raise WaitTimeout(seen) from exc
                time.sleep(min(pause, left))
                pause = p.next_pause(pause)

    def _wait_listening(self, job_id: JobId, deadline: float, conn: Any) -> Job:
        p.check_listener(conn.autocommit, conn.info.transaction_status)
        # A channel the application listens to already stays listened to.
        cursor = conn.execute(p.LISTENING)
        cursor.row_factory = p.tuple_row
        listening = bool(cursor.fetchone()[0])
        if not listening:
            conn.execute("LISTEN exportd_events")
        try:
            # Listening first, then reading: an end between the two is seen.
            job = self._read(job_id, deadline, None)
            while not job.finished:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(job)
                # Closed on leaving: the generator holds the connection while open.
                notified = conn.notifies(timeout=p.listen_slice(left))
                with contextlib.closing(notified) as notes:
                    for note in notes:
                        if p.event_id(note.payload) == str(job.id):
                            break
                job = self._read(job_id, deadline, job)
            return p.outcome(job)
        finally:
            if not listening:
                conn.execute("UNLISTEN exportd_events")
