"""What a Python dataset's author imports: ``from exportd.handlers import HandlerContext``.

A handler is an async generator function taking a ``HandlerContext``; it is
named in a kind's definition by a dotted path or by an entry point in the
``exportd.handlers`` group (``ENTRY_POINT_GROUP``). How handlers are found
and checked is ``exportd.definitions.python_datasets``; how their rows are
written is the export engine's. An ``exportd.errors.ExportError`` a handler
raises keeps its kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

ENTRY_POINT_GROUP = "exportd.handlers"


@dataclass(frozen=True)
class HandlerContext:
    """What a handler gets: whose data, the validated params, and a connection.

    ``connection`` is inside the job's read-only REPEATABLE READ transaction,
    so what a handler reads agrees with the job's other datasets.
    """

    owner: str
    params: Mapping[str, object]
    connection: Any  # asyncpg.Connection
    kind: str
    dataset: str
    log: Any


Handler = Callable[[HandlerContext], AsyncIterator[Any]]
