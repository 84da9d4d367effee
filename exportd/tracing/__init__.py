"""Tracing with OpenTelemetry, behind a seam that costs nothing when it is off.

- ``seam``: the ``Tracer`` and ``Span`` Protocols, the process's tracer
  (``install``/``tracer``), ``span`` for a child of the current span and
  ``current_span`` to annotate it; without a tracer, no-ops.
- ``context``: W3C Trace Context, pure (a job's ``trace_context``, headers).
- ``jobs``: the spans of a job attempt; ``logs``: trace ids on log lines.
- ``config`` and ``setup``: whether the ``OTEL_*`` variables turn it on; only
  then is ``otel`` (the OpenTelemetry implementation) imported.
"""
