"""The process's S3 client, with an overall deadline on every request.

One aiobotocore client serves the whole process: it owns the connection pool,
so every export and the API share the pool instead of opening their own.
What a failure means is decided in ``causes``; the operations on objects are
in ``objects``, the streaming upload in ``upload``, download URLs in ``presign``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Awaitable
from typing import Any, TypeAlias

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from pydantic import SecretStr

from exportd.settings.model import Settings

# aiobotocore ships no type information; the alias keeps ``Any`` in one place.
S3Client: TypeAlias = Any

# Connections beyond the part uploads, for the API's presigning and readiness
# checks and for the CreateMultipartUpload/Complete calls between parts.
_SPARE_CONNECTIONS = 4
# botocore's own bounds on one attempt of a request: connecting, and waiting
# for the answer once the body is sent (not the whole transfer). The overall
# deadline of DeadlineClient bounds the attempts together; three attempts (at
# most about 3 s of botocore's backoff between them) fit well inside it, so a
# store's repeated answer, not the deadline, is what the caller sees.
_CONNECT_TIMEOUT = 5.0
_MAX_ATTEMPTS = 3
# A body is sent at no less than this rate: a part's deadline is the request
# deadline plus its size at this rate (1 MiB/s: a 5 MiB part gets 5 s more).
MIN_UPLOAD_BYTES_PER_SECOND = 1024 * 1024


class DeadlineClient:
    """The aiobotocore client, with an overall deadline on every awaited operation.

    botocore's timeouts bound one attempt's connect and read; a server that
    accepts the request and trickles, or answers nothing while keeping the
    connection alive, and botocore's own retries, are bounded only by this
    ``asyncio.timeout``: ``request_seconds`` per operation, plus, for one
    carrying a body, its size at ``MIN_UPLOAD_BYTES_PER_SECOND``. An
    operation past its deadline raises ``TimeoutError`` (which
    ``classify_s3_error`` makes ``storage_unavailable``). Synchronous
    attributes (``get_paginator``, ``meta``, ``exceptions``) pass through:
    a listing is bounded by its caller (``list_open_uploads``).
    """

    def __init__(self, client: Any, request_seconds: float) -> None:
        if request_seconds <= 0:
            raise ValueError(f"request_seconds must be positive, got {request_seconds}")
        self._client = client
        self.request_seconds = request_seconds

    def deadline(self, body: object = None) -> float:
        """Seconds allowed for one operation carrying ``body`` (None: no body)."""
        size = len(body) if isinstance(body, bytes | bytearray | memoryview) else 0
        return self.request_seconds + size / MIN_UPLOAD_BYTES_PER_SECOND

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        # aiobotocore's operations are plain functions that return a coroutine
        # (not coroutine functions), so the result decides, not the function.
        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.isawaitable(result):
                return self._bounded(result, self.deadline(kwargs.get("Body")))
            return result

        return call

    @staticmethod
    async def _bounded(operation: Awaitable[Any], seconds: float) -> Any:
        async with asyncio.timeout(seconds):
            return await operation


def request_deadline(client: S3Client, default: float = 30.0) -> float:
    """The client's per-request deadline in seconds (``default`` for a bare client)."""
    return float(getattr(client, "request_seconds", default))


def _path_style(settings: Settings, endpoint_url: str | None) -> bool:
    if settings.s3_addressing_style == "auto":
        return endpoint_url is not None
    return settings.s3_addressing_style == "path"


async def open_files_client(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> S3Client | None:
    """The client of the files datasets' source store when it is not the target's
    (``EXPORTD_FILES_S3_ENDPOINT_URL`` or keys set), else None: the target's serves.
    Same deadlines and credential chain as the target's."""
    if not settings.files_own_store:
        return None
    keys = None
    if settings.files_s3_access_key_id is not None and settings.files_s3_secret_access_key:
        keys = (settings.files_s3_access_key_id, settings.files_s3_secret_access_key)
    return await open_s3_client(
        settings,
        stack,
        endpoint_url=settings.files_s3_endpoint_url or settings.s3_endpoint_url,
        region=settings.files_s3_region or settings.s3_region,
        keys=keys,
    )


async def open_s3_client(
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    keys: tuple[SecretStr, SecretStr] | None = None,
) -> S3Client:
    """The process's S3 client, every operation under a deadline
    (``settings.s3_request_seconds``); it is closed when ``stack`` is. ``endpoint_url``,
    ``region`` and ``keys`` replace the target's (``EXPORTD_S3_*``) where given."""
    request_seconds = settings.s3_request_seconds
    region = region or settings.s3_region
    endpoint_url = endpoint_url or settings.s3_endpoint_url
    config = AioConfig(
        region_name=region,
        # SigV4 everywhere: S3-compatible servers (rclone, MinIO, R2) reject the
        # SigV2 presigned URLs botocore would otherwise produce.
        signature_version="s3v4",
        s3={"addressing_style": "path" if _path_style(settings, endpoint_url) else "virtual"},
        request_checksum_calculation=settings.s3_checksum,
        response_checksum_validation=settings.s3_checksum,
        max_pool_connections=settings.concurrency * settings.s3_parts_in_flight
        + _SPARE_CONNECTIONS,
        connect_timeout=min(_CONNECT_TIMEOUT, request_seconds),
        read_timeout=request_seconds,
        retries={"mode": "standard", "max_attempts": _MAX_ATTEMPTS},
    )
    credentials: dict[str, str] = {}
    target_keys = (settings.s3_access_key_id, settings.s3_secret_access_key)
    if keys is None and target_keys[0] is not None and target_keys[1] is not None:
        keys = (target_keys[0], target_keys[1])
    if keys is not None:
        credentials = {
            "aws_access_key_id": keys[0].get_secret_value(),
            "aws_secret_access_key": keys[1].get_secret_value(),
        }
    # Without explicit keys botocore walks the standard chain (environment,
    # shared files, container and instance roles) and refreshes them itself.
    session = get_session()
    client = await stack.enter_async_context(
        session.create_client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=config,
            **credentials,
        )
    )
    return DeadlineClient(client, request_seconds)
