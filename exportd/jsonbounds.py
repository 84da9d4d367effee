"""JSON text decoded within bounds: no caller document reaches a recursive decoder unchecked.

Postgres accepts a jsonb document nested far deeper than Python's ``json``
module can decode (1,200 levels raise ``RecursionError``), so a document a
caller wrote is measured first, by a loop that recurses into nothing.
"""

from __future__ import annotations

import json
from typing import Any

from exportd.limits import JSON_MAX_DEPTH, PARAMS_MAX_BYTES


class JsonBoundsError(ValueError):
    """A document over a bound, or not JSON; the message says which and by how much."""


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (0 for a scalar).

    Brackets inside strings do not count. The text is not validated: a
    malformed document still has a depth, and ``json.loads`` says what is wrong.
    """
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def loads_bounded(
    text: str,
    what: str,
    *,
    max_depth: int = JSON_MAX_DEPTH,
    max_bytes: int = PARAMS_MAX_BYTES,
) -> Any:
    """``json.loads(text)`` once ``text`` is within ``max_bytes`` (UTF-8) and ``max_depth``.

    ``what`` names the document in the error ("params"). Raises
    ``JsonBoundsError`` with a message a person can act on; never
    ``RecursionError``. The defaults are those of caller params
    (exportd/limits.py).
    """
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise JsonBoundsError(
            f"{what} are {size:,} bytes as JSON text, over the {max_bytes:,} allowed; "
            "send less (a narrower filter, fewer values) and enqueue again"
        )
    depth = json_depth(text)
    if depth > max_depth:
        raise JsonBoundsError(
            f"{what} nest {depth:,} levels deep, over the {max_depth} allowed; "
            "send a flatter document and enqueue again"
        )
    try:
        return json.loads(text)
    except ValueError as exc:
        raise JsonBoundsError(f"{what} are not valid JSON: {exc}") from exc
