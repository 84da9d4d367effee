"""``--option PATH=VALUE``: a job's options document from the command line. Pure.

``PATH`` is an option's name, dotted for a nested one (``timezone``,
``csv.profile``, ``json.big_numbers``); ``VALUE`` is read as JSON when it parses
(``true``, ``10000``, ``["id", "total"]``, ``"null"``), else taken as the string it
is (``Europe/Zurich``, ``excel``, ``;``). The daemon's parser judges the result
(``exportd.definitions.options``), as for ``POST /v1/jobs``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from exportd.cli.exits import EXIT_USAGE, CliError


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _value(text: str) -> Any:
    try:
        # Python's reader takes NaN and Infinity, which JSON (and jsonb) do not: they
        # are texts here (csv.null=NaN), not numbers the table would refuse.
        return json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError):  # not JSON: the text itself
        return text


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """The options document of repeated ``--option PATH=VALUE``; CliError (usage) for a
    pair without ``=``, an empty path part, or a path set twice or both as a value and
    as a group."""
    document: dict[str, Any] = {}
    for pair in pairs:
        path, sep, text = pair.partition("=")
        parts = [p.strip() for p in path.split(".")]
        if not sep or not all(parts):
            raise CliError(
                f"--option takes PATH=VALUE (csv.profile=excel), got {pair!r}", EXIT_USAGE
            )
        target = document
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise CliError(f"--option {path} conflicts with an earlier --option", EXIT_USAGE)
        if parts[-1] in target:
            raise CliError(f"--option {path} is given twice", EXIT_USAGE)
        target[parts[-1]] = _value(text)
    return document
