"""The webhooks' collectors, on the daemon's registry (``Metrics.registry``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

# Outcomes of exportd_webhook_deliveries_total: what one attempt came to.
# 'retrying' counts attempts that failed and will be tried again; the other
# three each end a delivery.
OUTCOMES = ("delivered", "retrying", "failed", "no_target")


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "exportd_webhook_deliveries",
            "Webhook attempts by outcome: delivered, retrying (failed, tried again later), "
            "failed (refused, or retried for the whole retry period), no_target.",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)
        self.latency = Counter(
            "exportd_webhook_request_seconds",
            "Seconds spent in webhook requests, all attempts together.",
            registry=registry,
        )
        self.pending = Gauge(
            "exportd_webhook_pending",
            "Webhook deliveries waiting to be delivered (in flight or to retry), as last read.",
            registry=registry,
        )
        self.oldest_pending_seconds = Gauge(
            "exportd_webhook_oldest_pending_seconds",
            "Age of the event of the oldest undelivered webhook (0 when none), as last read.",
            registry=registry,
        )

    def outcome(self, outcome: str) -> None:
        self.deliveries.labels(outcome).inc()
