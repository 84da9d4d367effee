"""Which event loop the daemon runs on.

uvloop implements sockets and transports in C: for the API, whose requests
are short and mostly socket writes and reads (the HTTP answer, the query to
Postgres), it roughly halves the CPU a request costs (docs/benchmarks.md).
The standard loop remains available, and is used where uvloop is missing.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Literal

LoopChoice = Literal["auto", "uvloop", "asyncio"]


def loop_factory(choice: LoopChoice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for ``asyncio.Runner``, or None for the standard loop."""
    if choice == "asyncio":
        return None
    if importlib.util.find_spec("uvloop") is None:
        if choice == "uvloop":
            raise RuntimeError("EXPORTD_EVENT_LOOP=uvloop, but uvloop is not installed")
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
