"""The two documents a job carries, as a request sends them: ``params`` (what the
export holds) and ``options`` (how its file is written). Read without I/O; each
problem a ``FieldError`` naming its field (``params.<name>``, ``options.<path>``).

The kind's own checks are those the daemon runs before the export
(``Kind.check``), so a job accepted here fails later only if the definitions
change in between (or the time zone database, for ``options.timezone``).
Problems are (field, message) pairs, which ``api.requests`` makes its FieldErrors of.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from exportd.definitions.kinds import Kind
from exportd.definitions.options.resolve import shape_problems
from exportd.definitions.params.spec import InvalidParams, ParamError

# (field, message): one problem of a request's field.
Problem = tuple[str, str]


def _params_field(error: ParamError) -> Problem:
    return (f"params.{error.field}" if error.field else "params", error.message)


def _options_field(error: ParamError) -> Problem:
    return (error.field or "options", error.message)


def options_document(raw: object, found: list[Problem]) -> dict[str, Any]:
    """The options a body gave (``{}`` for none or null); not an object: a problem."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        found.append(("options", "must be a JSON object"))
        return {}
    return raw


def kind_problems(
    kind: Kind | None,
    params: object,
    options: object,
    zones: Container[str] | None = None,
    *,
    check_params: bool = True,
) -> list[Problem]:
    """Every problem of ``params`` and ``options`` for ``kind`` (params first); without
    a kind, the options' own shape. ``zones``: the time zone names Postgres knows."""
    if kind is None:
        return [_options_field(e) for e in shape_problems(options)]
    found: list[Problem] = []
    if check_params:
        try:
            kind.validate(params)
        except InvalidParams as exc:
            found.extend(_params_field(e) for e in exc.errors)
    try:
        kind.options_for(options, zones)
    except InvalidParams as exc:
        found.extend(_options_field(e) for e in exc.errors)
    return found


def wants_zone(body: object) -> bool:
    """Whether a request's body names a time zone in its options (the zone names are
    read from the database only then)."""
    if not isinstance(body, dict):
        return False
    options = body.get("options")
    return isinstance(options, dict) and isinstance(options.get("timezone"), str)
