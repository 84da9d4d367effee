"""The daemon's webhook parts, assembled from the settings and the definitions."""

from __future__ import annotations

import asyncpg

from exportd.api.views import job_document
from exportd.definitions.kinds import Definitions
from exportd.metrics import Metrics
from exportd.queue.outbox import Outbox
from exportd.settings.model import Settings, SettingsError
from exportd.webhooks.deliverer import Deliverer, DelivererConfig
from exportd.webhooks.metrics import WebhookMetrics
from exportd.webhooks.policy import RetryPolicy
from exportd.webhooks.targets import configuration_problem


def webhook_config(settings: Settings, definitions: Definitions) -> DelivererConfig:
    """The deliverer's configuration, or a SettingsError when a URL is set (the
    default or a kind's) without a secret to sign with."""
    keys = settings.webhook_keys()
    problem = configuration_problem(definitions, settings.webhook_url, len(keys))
    if problem is not None:
        raise SettingsError(f"invalid settings: {problem}")
    return DelivererConfig(
        default_url=settings.webhook_url,
        keys=keys,
        timeout_seconds=settings.webhook_timeout,
        concurrency=settings.webhook_concurrency,
        poll_interval=settings.poll_interval,
        retry=RetryPolicy(
            base_seconds=settings.webhook_backoff_base_seconds,
            max_seconds=settings.webhook_backoff_max_seconds,
            period_seconds=settings.webhook_retry_period.total_seconds(),
        ),
    )


def webhook_deliverer(
    config: DelivererConfig,
    definitions: Definitions,
    pool: asyncpg.Pool,
    metrics: Metrics,
    daemon_id: str,
) -> Deliverer:
    """The deliverer on ``pool`` (connections of its own: its short statements never
    wait behind a claim or a completion), counting on ``metrics``' registry."""
    return Deliverer(
        Outbox(pool),
        definitions,
        config,
        job_document,
        daemon_id,
        metrics=WebhookMetrics(metrics.registry),
    )
