"""Turning tracing on at start-up, and off at shutdown with a deadline.

``start_tracing`` reads the ``OTEL_*`` variables (``tracing.config``) and, when
they ask for tracing and the ``otel`` extra is installed, installs an
OpenTelemetry tracer (``tracing.otel``). Otherwise nothing of OpenTelemetry is
imported: whether the SDK is installed is read from the installed
distributions' metadata, not by importing it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
from collections.abc import Mapping
from typing import Any

from exportd.tracing.config import TracingPlan, plan
from exportd.tracing.seam import NO_TRACER, Tracer, install

# How long a shutdown waits for the last spans to reach the collector.
SHUTDOWN_SECONDS = 5.0


def sdk_installed() -> bool:
    """Whether opentelemetry-sdk is installed (the ``otel`` extra), without importing it."""
    try:
        importlib.metadata.distribution("opentelemetry-sdk")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def tracing_plan(env: Mapping[str, str] | None = None) -> TracingPlan:
    """What the environment (``os.environ`` by default) asks of tracing."""
    return plan(os.environ if env is None else env, sdk_installed())


def _built(wanted: TracingPlan) -> tuple[TracingPlan, Any]:
    """``wanted`` and the SDK ``TracerProvider`` it asks for (None when off), or
    ``wanted`` turned into a problem when the SDK cannot be built as configured."""
    if not wanted.on or wanted.exporter is None:
        return wanted, None
    from exportd.tracing.otel import make_provider

    try:
        return wanted, make_provider(wanted.exporter)
    except ImportError:
        # The SDK came with something else, the extra's OTLP exporter did not.
        problem = f"{wanted.why} but the OTLP/HTTP exporter is not installed: "
        return TracingPlan(None, wanted.why, problem + "pip install 'exportd[otel]'"), None
    except ValueError as exc:
        # The SDK reads OTEL_BSP_* itself and refuses some values (a delay
        # under 1 ms, a batch over the queue); its message names the setting.
        return TracingPlan(None, wanted.why, f"the OpenTelemetry SDK refused: {exc}"), None


def start_tracing(
    *, show_owner: bool, log: Any, env: Mapping[str, str] | None = None
) -> TracingPlan:
    """Install the process's tracer as the environment asks, and log what was done
    (``tracing`` at info when on, at debug when off; ``tracing_not_started`` at
    warning: the daemon runs untraced rather than not at all); returns the plan
    followed (``plan.on`` False: the no-op tracer stays)."""
    wanted, provider = _built(tracing_plan(env))
    if provider is not None and wanted.exporter is not None:
        from exportd.tracing.otel import OtelTracer

        install(OtelTracer(provider, show_owner=show_owner))
        log.info("tracing", on=True, exporter=wanted.exporter, why=wanted.why)
        return wanted
    if wanted.problem is not None:
        log.warning("tracing_not_started", problem=wanted.problem)
    else:
        # Off is the default: no line among the few a failing start prints.
        log.debug("tracing", on=False, why=wanted.why)
    return wanted


async def stop_tracing(timeout_seconds: float = SHUTDOWN_SECONDS) -> None:
    """Flush the spans still buffered and uninstall the tracer; returns within about
    ``timeout_seconds`` whatever the collector does (``Tracer.shutdown``)."""
    tracer: Tracer = install(NO_TRACER)
    if tracer.enabled:
        await asyncio.to_thread(tracer.shutdown, timeout_seconds)


def tracing_report(*, show_owner: bool, env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """``exportd check``'s line on tracing: (fine, what): on or off and why, or the
    problem that keeps it off. Never an endpoint or a header (they may hold a token)."""
    wanted, provider = _built(tracing_plan(env))
    if provider is not None:
        # Built only to see whether the SDK accepts its settings: nothing is sent.
        provider.shutdown()
    if wanted.problem is not None:
        return False, wanted.problem
    if not wanted.on:
        return True, f"off ({wanted.why})"
    variables = os.environ if env is None else env
    service = variables.get("OTEL_SERVICE_NAME", "").strip() or "exportd"
    owner = "in clear (EXPORTD_TRACE_OWNER=true)" if show_owner else "left out"
    return True, f"on: {wanted.exporter} ({wanted.why}), service {service}; owners {owner}"
