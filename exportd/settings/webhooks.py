"""The ``EXPORTD_WEBHOOK_*`` settings: where job events are POSTed, how they are
signed, and how long they are retried. ``Settings`` takes them from here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from exportd.definitions.webhook_url import webhook_url_problem
from exportd.webhooks.signing import SecretError, decode_secrets

_SECONDS = re.compile(r"\d+(\.\d+)?")


class WebhookSettings(BaseModel):
    webhook_url: str | None = Field(
        None,
        description="Where job events (completed, failed, cancelled, expired) are POSTed, "
        "signed (docs/notifications.md), unless the job's kind names its own webhook_url. "
        "http:// or https:// only; redirects are not followed. Unset: only kinds with "
        "their own URL send events.",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Signing secret, whsec_ followed by base64 of 24 to 64 random bytes; "
        "several, space-separated, to rotate (each delivery carries one signature per "
        "secret). Required as soon as any webhook URL is set.",
    )
    webhook_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Deadline, in seconds, of one webhook request (connecting, sending "
        "and the answer's status and headers).",
    )
    webhook_retry_period: timedelta = Field(
        timedelta(days=1),
        description="How long a delivery is retried after its first attempt (on timeouts, "
        "connection errors, 3xx, 408, 429 and 5xx) before it fails for good.",
    )
    webhook_backoff_base_seconds: float = Field(
        5.0, gt=0, le=3600, description="First wait before a webhook is retried; doubles."
    )
    webhook_backoff_max_seconds: float = Field(
        3600.0, gt=0, le=86400, description="Longest wait between two attempts of a webhook."
    )
    webhook_concurrency: int = Field(
        8,
        ge=1,
        le=256,
        description="Webhook requests one daemon has in flight at once: a receiver that "
        "never answers holds one of them for webhook_timeout, and nothing else.",
    )

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str) and (problem := webhook_url_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _check_secret(cls, value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is None or (isinstance(text, str) and not text.strip()):
            return None
        if isinstance(text, str):
            try:
                decode_secrets(text)
            except SecretError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("webhook_retry_period", mode="before")
    @classmethod
    def _retry_seconds(cls, value: Any) -> Any:
        if isinstance(value, str) and _SECONDS.fullmatch(value.strip()):
            return float(value)
        return value

    @model_validator(mode="after")
    def _webhooks_consistent(self) -> Any:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError(
                "EXPORTD_WEBHOOK_URL needs EXPORTD_WEBHOOK_SECRET (events are always signed): "
                "whsec_ and the base64 of 24 to 64 random bytes, see docs/notifications.md"
            )
        if self.webhook_backoff_max_seconds < self.webhook_backoff_base_seconds:
            raise ValueError("webhook_backoff_max_seconds must be at least its base")
        if self.webhook_retry_period.total_seconds() < 1:
            raise ValueError("webhook_retry_period must be at least 1 second")
        return self

    def webhook_keys(self) -> list[bytes]:
        """The signing keys of ``webhook_secret``, in order; [] when unset."""
        if self.webhook_secret is None:
            return []
        return decode_secrets(self.webhook_secret.get_secret_value())
