"""Parameter declarations: the ``[kinds.<kind>.params.<name>]`` tables of a definitions file,
turned into ParamSpecs.

Declarations are written by whoever operates the daemon, not by requesters, so their
problems are configuration errors, found when definitions are loaded and reported all at
once, rather than parameter errors of a job.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from exportd.definitions.params.spec import (
    NAME_RE,
    ORDERED_TYPES,
    RESERVED_NAMES,
    ParamSpec,
    ParamType,
)
from exportd.definitions.params.validation import coerce
from exportd.definitions.params.values import _PARSERS, _names, _Reject, _show, render

T = TypeVar("T")


# The keys a spec may carry besides type/required/default/description, by the type whose
# values they constrain (for a list: its item type).
RULE_KEYS: Mapping[ParamType, frozenset[str]] = {
    ParamType.STRING: frozenset({"min_length", "max_length", "pattern"}),
    ParamType.INTEGER: frozenset({"min", "max"}),
    ParamType.NUMBER: frozenset({"min", "max"}),
    ParamType.DATE: frozenset({"min", "max"}),
    ParamType.DATETIME: frozenset({"min", "max"}),
    ParamType.ENUM: frozenset({"values"}),
    ParamType.BOOLEAN: frozenset(),
}
LIST_KEYS = frozenset({"items", "max_items"})
COMMON_KEYS = frozenset({"type", "required", "default", "description"})
SPEC_KEYS = COMMON_KEYS | LIST_KEYS | frozenset().union(*RULE_KEYS.values())


class SpecError(ValueError):
    """A parameter declaration that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# --- Building a spec from a declaration ------------------------------------------------------


def parse_spec(name: str, table: Mapping[str, object]) -> ParamSpec:
    """The spec a ``[kinds.<kind>.params.<name>]`` table declares, or SpecError with every
    problem in it."""
    problems: list[str] = []
    if not NAME_RE.fullmatch(name):
        problems.append("a parameter name must match [a-z_][a-z0-9_]*")
    elif name in RESERVED_NAMES:
        problems.append(f"'{name}' is reserved: :{name} is always the job's owner")
    for key in table:
        if key not in SPEC_KEYS:
            problems.append(unknown_key(key, SPEC_KEYS))

    param_type = _enum_key(table, "type", problems, required=True)
    item_type = _enum_key(table, "items", problems, required=False)
    if param_type is None:
        raise SpecError(problems)
    # The type whose values the rule keys constrain: for a list, its items (None when the
    # items are not declared well enough to tell).
    rule_type: ParamType | None = param_type
    if param_type is ParamType.LIST:
        rule_type = item_type
        if item_type is None and "items" not in table:
            problems.append('a list needs items = "<type>" (the type of each item)')
        elif item_type is ParamType.LIST:
            problems.append("list items must be a scalar type, not list")
            rule_type = None
    if rule_type is not None:
        applicable = COMMON_KEYS | RULE_KEYS[rule_type]
        if param_type is ParamType.LIST:
            applicable |= LIST_KEYS
        what = f"lists of {rule_type}" if param_type is ParamType.LIST else f"{param_type}s"
        for key in table:
            if key in SPEC_KEYS and key not in applicable:
                problems.append(f"'{key}' does not apply to {what}")

    description = _typed_key(table, "description", str, problems) or ""
    required = _typed_key(table, "required", bool, problems)
    min_length = _count_key(table, "min_length", problems)
    max_length = _count_key(table, "max_length", problems)
    max_items = _count_key(table, "max_items", problems)
    if max_items == 0:
        problems.append("max_items must be at least 1")
    if min_length is not None and max_length is not None and min_length > max_length:
        problems.append(f"min_length ({min_length}) is greater than max_length ({max_length})")
    pattern = _pattern_key(table, problems)
    values = _values_key(table, problems)
    if rule_type is ParamType.ENUM and "values" not in table:
        problems.append('an enum needs values = ["...", ...]')

    shape = ParamSpec(
        name=name,
        type=param_type,
        description=description,
        min_length=min_length,
        max_length=max_length,
        pattern=pattern,
        values=values,
        items=item_type if param_type is ParamType.LIST else None,
        max_items=max_items,
    )
    low = _bound_key(table, "min", rule_type, shape, problems)
    high = _bound_key(table, "max", rule_type, shape, problems)
    if low is not None and high is not None and low > high:  # type: ignore[operator]
        problems.append(f"min ({render(low)}) is greater than max ({render(high)})")
    if problems:
        raise SpecError(problems)

    spec = replace(shape, min=low, max=high)
    default = table.get("default")
    if default is not None:
        if required:
            problems.append("a required parameter cannot have a default")
        typed, errors = coerce(replace(spec, name="default"), default)
        problems.extend(e.message for e in errors)
        spec = replace(spec, default=typed)
    if problems:
        raise SpecError(problems)
    return replace(spec, required=default is None if required is None else required)


def unknown_key(key: str, known: frozenset[str]) -> str:
    """'unknown key', with the closest known key when a typo is likely."""
    problem = f"unknown key '{key}'"
    if close := difflib.get_close_matches(key, sorted(known), n=1):
        problem += f" (did you mean '{close[0]}'?)"
    return problem


def _typed_key(
    table: Mapping[str, object], key: str, kind: type[T], problems: list[str]
) -> T | None:
    value = table.get(key)
    if value is None:
        return None
    # bool is an int in Python, never in a declaration.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        problems.append(f"{key} must be {_TOML_NAMES[kind]}, got {_show(value)}")
        return None
    return value


_TOML_NAMES: Mapping[type, str] = {
    str: "a string",
    bool: "true or false",
    int: "a whole number",
    list: "a list",
}


def _enum_key(
    table: Mapping[str, object], key: str, problems: list[str], *, required: bool
) -> ParamType | None:
    value = table.get(key)
    if value is None:
        if required:
            problems.append(f"{key} is required (one of {_names(list(ParamType))})")
        return None
    if isinstance(value, str) and value in ParamType.__members__.values():
        return ParamType(value)
    problems.append(f"{key} must be one of {_names(list(ParamType))}, got {_show(value)}")
    return None


def _count_key(table: Mapping[str, object], key: str, problems: list[str]) -> int | None:
    value = _typed_key(table, key, int, problems)
    if value is not None and value < 0:
        problems.append(f"{key} must not be negative, got {value}")
        return None
    return value


def _pattern_key(table: Mapping[str, object], problems: list[str]) -> str | None:
    pattern = _typed_key(table, "pattern", str, problems)
    if pattern is None:
        return None
    try:
        re.compile(pattern)
    except re.error as error:
        problems.append(f"pattern {pattern!r} is not a valid regular expression: {error}")
        return None
    return pattern


def _values_key(table: Mapping[str, object], problems: list[str]) -> tuple[str, ...] | None:
    values = _typed_key(table, "values", list, problems)
    if values is None:
        return None
    if not values:
        problems.append("values must not be empty")
        return None
    if not all(isinstance(v, str) and v for v in values):
        problems.append("values must be non-empty strings")
        return None
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        problems.append(f"values are listed twice: {_names(duplicates)}")
    return tuple(values)


def _bound_key(
    table: Mapping[str, object],
    key: str,
    rule_type: ParamType | None,
    shape: ParamSpec,
    problems: list[str],
) -> object:
    value = table.get(key)
    if value is None or rule_type is None or rule_type not in ORDERED_TYPES:
        return None
    # A bound is parsed exactly like a value of its type, TOML dates and strings alike.
    try:
        return _PARSERS[rule_type](shape, key, value)
    except _Reject as reject:
        problems.append(reject.message)
        return None
