"""Statements composed from named templates (``sql/queries.sql``). Pure.

A template holds markers (``/* dataset */``, ``/* column */``, ...); each is replaced by
text the caller built from named templates, quoted identifiers taken from a prepared
statement, or constants from the typed-literal builder. The template is split at its
markers first, so nothing inserted is ever searched again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from exportd.queue.sql import queries

_MARKER = re.compile(r"/\* ([a-z_]+) \*/")


def template(name: str) -> str:
    """The named query ``name`` as the file holds it (comments included)."""
    return queries()[name]


def snippet(name: str) -> str:
    """The named template ``name`` without its leading comment lines: an expression or a
    statement ready to be placed inside another."""
    lines = template(name).splitlines()
    while lines and lines[0].lstrip().startswith("--"):
        lines.pop(0)
    return "\n".join(lines).strip()


def fill(template: str, parts: Mapping[str, str]) -> str:
    """``template`` with each marker ``/* key */`` replaced by ``parts[key]`` (a marker
    may occur several times). Raises KeyError for a marker ``parts`` lacks and
    ValueError for a part no marker names."""
    pieces = _MARKER.split(template)
    # split() with one group alternates text and marker names: text, name, text, ...
    used = set(pieces[1::2])
    unused = set(parts) - used
    if unused:
        raise ValueError(f"no marker for {sorted(unused)}")
    return "".join(piece if i % 2 == 0 else parts[piece] for i, piece in enumerate(pieces))
