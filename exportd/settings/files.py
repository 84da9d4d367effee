"""The ``EXPORTD_FILES_*`` settings: which stored objects a files dataset may copy into
a bundle, and how the daemon reaches them. ``Settings`` takes them from here.

A files dataset (docs/definitions.md) names objects by bucket and key; only those
under one of ``files_sources`` (``bucket/prefix`` entries) may be read. The source
store is the target's unless ``files_s3_endpoint_url`` or keys are set; its
credentials follow the same chain as the target's.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from exportd.definitions.files_policy import source_problem

# A bound on a typo, not on any real export: each row is held while the bundle is written.
FILES_MAX_PER_JOB_CEILING = 1_000_000


def endpoint_url(value: str | None) -> str | None:
    """An S3 endpoint setting: None when unset or empty, else an http(s) URL with a
    host. Raises ValueError for anything else (pydantic reports it as the setting's)."""
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:9000")
    return value


class FilesSettings(BaseModel):
    files_sources: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Space-separated bucket/prefix entries a files dataset may read "
        "(uploads/receipts/, or a bucket alone for all of it); a key outside them fails "
        "the job as access_denied before any object is read. Empty: no files at all.",
    )
    files_bucket: str | None = Field(
        None,
        description="The bucket of a files dataset's rows that name none; unset: the "
        "bucket of the first files_sources entry.",
    )
    files_s3_endpoint_url: str | None = Field(
        None,
        description="The S3 endpoint of the source objects; unset: the target's "
        "(EXPORTD_S3_ENDPOINT_URL) and its client.",
    )
    files_s3_region: str | None = Field(
        None, description="Region of the source store; unset: EXPORTD_S3_REGION."
    )
    files_s3_access_key_id: SecretStr | None = Field(
        None,
        description="Keys for the source store; unset: the target's "
        "(EXPORTD_S3_ACCESS_KEY_ID), or without them the standard AWS credential chain.",
    )
    files_s3_secret_access_key: SecretStr | None = Field(
        None, description="Goes with files_s3_access_key_id."
    )
    files_max_per_job: int = Field(
        10_000,
        ge=1,
        le=FILES_MAX_PER_JOB_CEILING,
        description="The most objects one job may bundle (every row of its files "
        "datasets is read and checked before the first object is): more fails as too_large.",
    )

    @field_validator("files_sources", mode="before")
    @classmethod
    def _split_sources(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split()
        if isinstance(value, list):
            # A duplicate allows nothing more: kept once.
            return list(dict.fromkeys(_source(str(entry)) for entry in value))
        return value

    @field_validator("files_s3_endpoint_url")
    @classmethod
    def _files_http_url(cls, value: str | None) -> str | None:
        # Checked as EXPORTD_S3_ENDPOINT_URL is: a typo fails at start, not per job.
        return endpoint_url(value)

    @model_validator(mode="after")
    def _files_consistent(self) -> Any:
        if (self.files_s3_access_key_id is None) != (self.files_s3_secret_access_key is None):
            raise ValueError("files_s3_access_key_id and files_s3_secret_access_key go together")
        return self

    @property
    def files_own_store(self) -> bool:
        """Whether the source objects need a client of their own (another endpoint or keys)."""
        return self.files_s3_endpoint_url is not None or self.files_s3_access_key_id is not None

    @property
    def files_default_bucket(self) -> str | None:
        if self.files_bucket:
            return self.files_bucket
        if self.files_sources:
            return self.files_sources[0].split("/", 1)[0]
        return None


def _source(entry: str) -> str:
    """A ``bucket/prefix`` entry as given, or a ValueError saying what is wrong."""
    problem = source_problem(entry)
    if problem is not None:
        raise ValueError(f"files_sources entry {entry!r} {problem}")
    return entry
