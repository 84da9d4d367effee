"""Python datasets: where SQL cannot express an export, a function can.

A dataset declares ``handler = "package.module:function"`` (a dotted path) or
``handler = "name"`` (an entry point in the ``exportd.handlers`` group of an
installed distribution). The function takes a ``HandlerContext`` and returns an
async iterator: of rows (mappings of column name to value) when the dataset's
``output`` is ``rows``, or of ``bytes`` when it is ``bytes`` (a PDF, say).

Handlers are imported when definitions load, so a missing module or function
stops ``exportd run`` and fails ``exportd check`` instead of a user's job.
What a handler's author imports (``HandlerContext``) is ``exportd.handlers``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from exportd.handlers import ENTRY_POINT_GROUP, Handler


class HandlerNotFound(LookupError):
    """The reference does not name a callable; the message says why."""


def load_handler(reference: str) -> Handler:
    """The callable ``reference`` names: ``module:attr``, ``module.attr`` or an entry point."""
    if ":" in reference or "." in reference:
        module_name, _, attr = (
            reference.partition(":") if ":" in reference else reference.rpartition(".")
        )
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise HandlerNotFound(f"cannot import {module_name!r}: {exc}") from None
        target: object = module
        for part in attr.split("."):
            target = getattr(target, part, None)
            if target is None:
                raise HandlerNotFound(f"{module_name!r} has no attribute {attr!r}")
    else:
        found = entry_points(group=ENTRY_POINT_GROUP, name=reference)
        if not found:
            raise HandlerNotFound(
                f"no entry point {reference!r} in group {ENTRY_POINT_GROUP!r} "
                "(use module:function for a dotted path)"
            )
        try:
            target = next(iter(found)).load()
        except Exception as exc:
            raise HandlerNotFound(f"entry point {reference!r} fails to load: {exc}") from None
    if not callable(target):
        raise HandlerNotFound(f"{reference!r} is not callable")
    handler: Handler = target
    return handler
