"""The settings model: every ``EXPORTD_*`` setting, with the reason it exists, its
checks, and the values derived from it (deadlines, S3 request arguments).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from exportd.export.keys import check_prefix
from exportd.limits import MAX_ROW_BYTES_CEILING, MAX_ROW_BYTES_DEFAULT, MAX_ROW_BYTES_FLOOR
from exportd.settings.files import FilesSettings, endpoint_url
from exportd.settings.tracing import TracingSettings
from exportd.settings.ui import UiSettings
from exportd.settings.webhooks import WebhookSettings

MIB = 1024 * 1024
_SECONDS = re.compile(r"\d+(\.\d+)?")
GIB = 1024 * MIB
# The least deadline a default derived from the lease comes to: a statement or
# request that honestly takes a few seconds on a loaded machine is not an outage.
_MIN_DEADLINE = 5.0


class SettingsError(Exception):
    """Settings that cannot be used, with one line per problem."""


def _check_postgres_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("must be a postgresql:// URL, e.g. postgresql://user@host:5432/db")
    return value


class Settings(BaseSettings, WebhookSettings, FilesSettings, TracingSettings, UiSettings):
    model_config = SettingsConfigDict(
        env_prefix="EXPORTD_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- Postgres -----------------------------------------------------------
    database_url: str = Field(
        "postgresql://localhost:5432/postgres",
        description="The database holding the exportd schema (the queue).",
    )
    source_database_url: str | None = Field(
        None,
        description="The database the export queries read; defaults to database_url. "
        "Point it at a read replica to keep exports off the primary.",
    )
    database_pool_size: int | None = Field(
        None,
        ge=2,
        le=100,
        description="Connections to the queue database (claims, completions, reaping, "
        "maintenance); by default concurrency + 3. Heartbeats have a connection of their "
        "own besides these, so that nothing holding the others keeps a lease unrenewed.",
    )
    api_pool_size: int = Field(
        4,
        ge=1,
        le=100,
        description="Connections the HTTP API reads and writes jobs with: a pool of its "
        "own, so that a burst of requests never keeps a heartbeat waiting.",
    )
    database_timeout: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="Deadline, in seconds, of every statement on the queue and API "
        "connections (asyncpg's command_timeout, and the server's statement_timeout so "
        "that Postgres stops too when the client is gone). By default a third of the "
        "lease, at least 5 s. Export queries have their kind's timeout instead.",
    )

    # --- S3 -----------------------------------------------------------------
    s3_bucket: str | None = Field(
        None,
        min_length=3,
        max_length=63,
        description="Bucket receiving exports; required by every command that touches S3.",
    )
    s3_prefix: str = Field(
        "exports",
        description="Key prefix: {prefix}/{owner}/{job_id}/{file}; no empty, '.' or '..' "
        "segment, at most 475 bytes, so that every key fits S3's 1,024.",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, R2, rclone...); AWS when unset."
    )
    s3_region: str = Field("us-east-1", description="Region used to sign requests.")
    s3_access_key_id: SecretStr | None = Field(
        None, description="Overrides the standard AWS credential chain when set."
    )
    s3_secret_access_key: SecretStr | None = Field(None, description="Goes with s3_access_key_id.")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto",
        description="'auto' means path-style when s3_endpoint_url is set (what most "
        "S3-compatible servers expect) and virtual-hosted on AWS.",
    )
    s3_checksum: Literal["when_required", "when_supported"] = Field(
        "when_required",
        description="botocore's request checksum calculation and response validation. "
        "'when_supported' breaks many S3-compatible stores.",
    )
    s3_sse: Literal["none", "AES256", "aws:kms"] = Field(
        "none",
        description="Server-side encryption of exports: 'AES256' (SSE-S3) or 'aws:kms' "
        "(SSE-KMS, with s3_sse_kms_key_id or the bucket's default key).",
    )
    s3_sse_kms_key_id: str | None = Field(
        None, description="The KMS key id or ARN for s3_sse = 'aws:kms'."
    )
    s3_max_export_bytes: int = Field(
        100 * GIB, ge=5 * MIB, description="Largest object one export may produce."
    )
    s3_part_size: int | None = Field(
        None,
        ge=5 * MIB,
        le=5 * GIB,
        description="Multipart part size in bytes; by default the smallest whole number "
        "of MiB that fits s3_max_export_bytes in 10,000 parts.",
    )
    s3_parts_in_flight: int = Field(
        2, ge=1, le=16, description="Parts of one export uploading at once (memory per job)."
    )
    s3_request_timeout: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="Overall deadline, in seconds, of one S3 request (botocore's retries "
        "included); a part's upload gets its size at 1 MiB/s on top. By default a third "
        "of the lease, at least 5 s. The commit of an object, made while its job's row is "
        "locked, has a third of the lease whatever this says.",
    )
    download_url_ttl: timedelta = Field(
        timedelta(hours=1), description="Lifetime of presigned download URLs (at most 7 days)."
    )

    # --- Exports ------------------------------------------------------------
    definitions: Path | None = Field(
        None, description="A TOML file, or a directory of them, defining the export kinds."
    )
    concurrency: int = Field(4, ge=1, le=256, description="Jobs one daemon runs at once.")
    export_timezone: str = Field(
        "UTC",
        description="Time zone in which timestamptz values are written (always with "
        "their offset), whatever the server's default.",
    )
    max_job_duration: timedelta = Field(
        timedelta(hours=6),
        description="Longest a whole export job may run (query, encoding and upload), "
        "unless its kind sets max_duration; a job that runs longer fails with too_long.",
    )
    retention: timedelta = Field(
        timedelta(days=7),
        description="How long a completed export stays downloadable; then its object is "
        "deleted and the job becomes 'expired'.",
    )
    history_retention: timedelta = Field(
        timedelta(days=30),
        description="How long failed, cancelled and expired jobs stay in the table, counted "
        "from when they finished; then their rows are deleted. Longer than retention.",
    )
    max_row_bytes: int = Field(
        MAX_ROW_BYTES_DEFAULT,
        ge=MAX_ROW_BYTES_FLOOR,
        le=MAX_ROW_BYTES_CEILING,
        description="Largest row an export may write, in bytes of the file (a CSV line, a "
        "JSON Lines record); a larger row fails the job with too_large. COPY hands a row "
        "over whole, so one costs about twice its size in memory on top of the parts.",
    )
    max_per_owner: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Most jobs of one owner processing at once, across all daemons. "
        "Unset: no limit (claims are then one statement and do not take turns).",
    )

    # --- Queue --------------------------------------------------------------
    lease_seconds: float = Field(
        30.0, ge=3, le=3600, description="A job's lease; renewed every third of it."
    )
    poll_interval: float = Field(
        2.0, gt=0, le=60, description="Claim this often even when no notification arrives."
    )
    reap_interval: float = Field(
        10.0, gt=0, le=3600, description="How often expired leases are looked for."
    )
    backoff_base_seconds: float = Field(10.0, gt=0, description="First retry delay.")
    backoff_max_seconds: float = Field(3600.0, gt=0, description="Longest retry delay.")
    startup_wait_seconds: float = Field(
        120.0,
        ge=0,
        description="At start, how long to keep trying to reach the queue database "
        "(with backoff) before exiting with status 1.",
    )
    shutdown_grace_seconds: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM, how long running jobs may finish before they "
        "are handed back to the queue.",
    )

    # --- Maintenance and outages -----------------------------------------------
    maintenance_interval: float = Field(
        60.0,
        gt=0,
        le=86400,
        description="How often retention, the history purge and the sweep of orphaned "
        "uploads run (one daemon at a time does each).",
    )
    schedule_catch_up: Literal["latest", "none"] = Field(
        "latest",
        description="Occurrences of a schedule missed while no daemon ran: 'latest' makes "
        "one job on recovery (never one per occurrence); 'none' skips those found over twice "
        "maintenance_interval (at least a minute) late. See docs/schedules.md.",
    )
    orphan_upload_age: timedelta = Field(
        timedelta(hours=1),
        description="An open multipart upload under the prefix that no processing job "
        "owns is aborted once it is this old.",
    )
    storage_failure_threshold: int = Field(
        3,
        ge=1,
        le=1000,
        description="Consecutive storage failures (S3 unreachable, 5xx, throttling) after "
        "which the daemon stops claiming jobs until the bucket answers again.",
    )
    storage_probe_interval: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="While claims are stopped by storage failures, how often the bucket is probed.",
    )

    # --- API and logs -------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Listen address of the HTTP API.")
    api_port: int = Field(8080, ge=0, le=65535, description="Listen port (0 picks a free one).")
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated bearer tokens accepted on /v1/*. Empty: /v1 refuses all.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, /metrics requires Authorization: Bearer with this token "
        "(or an API token). /healthz and /readyz stay open for probes.",
    )
    metrics_require_auth: bool = Field(
        False,
        description="/metrics requires a bearer token from EXPORTD_API_TOKENS (or "
        "EXPORTD_METRICS_TOKEN); implied when EXPORTD_METRICS_TOKEN is set.",
    )
    access_log: bool = Field(
        True, description="One http_request log line per API request (with its request id)."
    )
    log_format: Literal["json", "console"] = Field("json", description="Log line format.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe level logged: debug, info, warning or error."
    )

    @field_validator("database_url", "source_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_postgres_url(value)

    @field_validator("s3_endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return endpoint_url(value)

    @field_validator(
        "retention",
        "history_retention",
        "orphan_upload_age",
        "download_url_ttl",
        "max_job_duration",
        mode="before",
    )
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        # pydantic reads a duration string only in ISO 8601 or HH:MM:SS; a
        # plain number of seconds is what people write in an environment.
        if isinstance(value, str) and _SECONDS.fullmatch(value.strip()):
            return float(value)
        return value

    @field_validator("s3_prefix")
    @classmethod
    def _strip_prefix(cls, value: str) -> str:
        # Checked here, at start, so that every key built under it fits S3's
        # limits whatever the owner and file name (export.keys).
        return check_prefix(value.strip("/"))

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.download_url_ttl > timedelta(days=7) or self.download_url_ttl.total_seconds() < 1:
            raise ValueError("download_url_ttl must lie between 1 second and 7 days (SigV4 limit)")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("s3_access_key_id and s3_secret_access_key go together")
        if self.s3_sse_kms_key_id is not None and self.s3_sse != "aws:kms":
            raise ValueError("s3_sse_kms_key_id needs s3_sse = aws:kms")
        if self.max_job_duration.total_seconds() < 1:
            raise ValueError("max_job_duration must be at least 1 second")
        if self.history_retention <= self.retention:
            raise ValueError("history_retention must be longer than retention")
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_max_seconds must be at least backoff_base_seconds")
        return self

    def bucket(self) -> str:
        """The bucket, or a SettingsError saying it must be set."""
        if self.s3_bucket is None:
            raise SettingsError("invalid settings: EXPORTD_S3_BUCKET: is required but not set")
        return self.s3_bucket

    def metrics_tokens(self) -> list[str] | None:
        """The tokens /metrics accepts, or None when it is open."""
        if self.metrics_token is None and not self.metrics_require_auth:
            return None
        tokens = [t.get_secret_value() for t in self.api_tokens]
        if self.metrics_token is not None:
            tokens.append(self.metrics_token.get_secret_value())
        return tokens

    @property
    def queue_pool_size(self) -> int:
        return self.database_pool_size or self.concurrency + 3

    @property
    def s3_request_seconds(self) -> float:
        """The deadline of one S3 request: the setting, or a third of the lease (>= 5 s)."""
        return self.s3_request_timeout or max(self.lease_seconds / 3.0, _MIN_DEADLINE)

    @property
    def database_seconds(self) -> float:
        """The deadline of one queue statement: the setting, or a third of the lease (>= 5 s)."""
        return self.database_timeout or max(self.lease_seconds / 3.0, _MIN_DEADLINE)

    @property
    def idle_in_transaction_seconds(self) -> float:
        """How long Postgres lets a queue transaction sit idle before it ends the session.

        Transactions on the queue connections wait on S3 between statements (the
        commit under the row lock, retention's deletes, the sweep's listing), each
        bounded by the S3 deadline; past twice that, the daemon is hung, and the
        server ends the session so that its row locks are released.
        """
        return 2.0 * max(self.s3_request_seconds, self.database_seconds)

    @property
    def source_url(self) -> str:
        return self.source_database_url or self.database_url

    @property
    def object_args(self) -> dict[str, str]:
        """Arguments of every PutObject and CreateMultipartUpload: the encryption."""
        if self.s3_sse == "none":
            return {}
        args: dict[str, str] = {"ServerSideEncryption": self.s3_sse}
        if self.s3_sse_kms_key_id is not None:
            args["SSEKMSKeyId"] = self.s3_sse_kms_key_id
        return args

    @property
    def path_style(self) -> bool:
        if self.s3_addressing_style == "auto":
            return self.s3_endpoint_url is not None
        return self.s3_addressing_style == "path"
