"""exportd's client: enqueue exports inside your own transaction, follow them
over HTTP, download them.

- ``Client`` and ``AsyncClient``: the daemon's HTTP API (``enqueue``, ``get``,
  ``list``, ``cancel``, ``retry``, ``delete``, ``download_url``, ``download``,
  ``kinds``, ``wait``).
- ``enqueue_asyncpg``, ``enqueue_psycopg``, ``enqueue_psycopg_async``,
  ``enqueue_sqlalchemy``, ``enqueue_sqlalchemy_async``: a job inserted in the
  application's open transaction, which exists only if it commits.
- The models (``Job``, ``Run``, ``Kind``) follow the daemon's OpenAPI document.
"""

from exportd_client._async_client import AsyncClient
from exportd_client._client import Client
from exportd_client._errors import (
    ApiError,
    BadRequest,
    Conflict,
    DownloadFailed,
    DuplicateJob,
    ExportdError,
    ExportFailed,
    Gone,
    InvalidAnswer,
    InvalidJob,
    NotFound,
    RateLimited,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from exportd_client._models import FieldProblem, Job, Kind, Run
from exportd_client._sql import DuplicateBusy
from exportd_client.transactional import (
    enqueue_asyncpg,
    enqueue_psycopg,
    enqueue_psycopg_async,
    enqueue_sqlalchemy,
    enqueue_sqlalchemy_async,
)

__all__ = [
    "ApiError",
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "DownloadFailed",
    "DuplicateBusy",
    "DuplicateJob",
    "ExportFailed",
    "ExportdError",
    "FieldProblem",
    "Gone",
    "InvalidAnswer",
    "InvalidJob",
    "Job",
    "Kind",
    "NotFound",
    "RateLimited",
    "Run",
    "Unauthorized",
    "Unavailable",
    "WaitTimeout",
    "enqueue_asyncpg",
    "enqueue_psycopg",
    "enqueue_psycopg_async",
    "enqueue_sqlalchemy",
    "enqueue_sqlalchemy_async",
]
