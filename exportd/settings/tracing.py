"""The ``EXPORTD_TRACE_*`` settings: what the spans of a job may say about it.
``Settings`` takes them from here.

Whether tracing is on, and where spans go, is the standard ``OTEL_*`` variables'
business (exportd.tracing.config), read by OpenTelemetry itself.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class TracingSettings(BaseModel):
    trace_owner: bool = Field(
        False,
        description="Whether a job's spans carry its owner in clear "
        "(exportd.job.owner). Off: the owner, often a user or tenant id, never "
        "leaves for the trace collector. Tracing itself is turned on by the "
        "standard OTEL_* variables (docs/operations.md, Tracing).",
    )
