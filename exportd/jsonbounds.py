"""JSON text decoded within bounds: no caller document reaches a recursive decoder unchecked.

Postgres accepts a jsonb document nested far deeper than Python's ``json``
module can decode (1,200 levels raise ``RecursionError``), so a document a
caller wrote is measured first, by a loop that recurses into nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from exportd.limits import JSON_MAX_DEPTH, PARAMS_MAX_BYTES

# A JSON string (its escapes included), and the brackets that nest.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonBoundsError(ValueError):
    """A document over a bound, or not JSON; the message says which and by how much."""


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (0 for a scalar).

    Read without decoding and without recursion, so that it runs before a
    decoder that recurses once per level (json and orjson both do: 1,000
    levels in 2 KB is a RecursionError). Brackets inside strings do not count.
    The text is not validated: text that is not JSON may be over-counted, and
    the decoder says what is wrong with it.
    """
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        if bracket.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
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
