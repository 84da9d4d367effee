"""structlog set-up: stable event names with key/value fields, JSON or console.

Logs go to stderr, so that the CLI's stdout carries only what a script reads
(a job id, a status document).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from exportd.tracing.logs import add_trace_ids

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(fmt: str = "json", level: str = "info") -> None:
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        # Inside a traced job or request: its trace_id and span_id.
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if fmt != "console":
        processors.append(structlog.processors.format_exc_info)
    processors.append(renderer)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    # aiohttp and asyncio speak through the standard library: same level, stderr.
    logging.basicConfig(level=_LEVELS[level], stream=sys.stderr, format="%(name)s %(message)s")
