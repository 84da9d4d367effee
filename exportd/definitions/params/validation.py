"""Validation of a job's params against its kind's specs.

Validation collects every problem before failing: a person fixing a request wants the
whole list, not one round trip per mistake.

Pure: no I/O. Whatever it is given, ``validate_params`` raises nothing but ``InvalidParams``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

from exportd.definitions.params.spec import (
    ORDERED_TYPES,
    RESERVED_NAMES,
    InvalidParams,
    ParamError,
    ParamSpec,
    ParamType,
)
from exportd.definitions.params.values import _PARSERS, _names, _Reject, _show, render

# --- Rules on typed values -----------------------------------------------------------------


def _check_rules(spec: ParamSpec, value: object) -> list[ParamError]:
    label = spec.name
    errors: list[ParamError] = []
    if spec.type in ORDERED_TYPES:
        # Bounds carry the spec's own type, so these comparisons are like with like.
        if spec.min is not None and value < spec.min:  # type: ignore[operator]
            message = f"{label} must be at least {render(spec.min)}, got {render(value)}"
            errors.append(ParamError(label, "min", message, spec.min))
        if spec.max is not None and value > spec.max:  # type: ignore[operator]
            message = f"{label} must be at most {render(spec.max)}, got {render(value)}"
            errors.append(ParamError(label, "max", message, spec.max))
    elif spec.type is ParamType.STRING:
        assert isinstance(value, str)
        if spec.min_length is not None and len(value) < spec.min_length:
            message = (
                f"{label} must be at least {spec.min_length} characters long, got {len(value)}"
            )
            errors.append(ParamError(label, "min_length", message, spec.min_length))
        if spec.max_length is not None and len(value) > spec.max_length:
            message = f"{label} must be at most {spec.max_length} characters long, got {len(value)}"
            errors.append(ParamError(label, "max_length", message, spec.max_length))
        if spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
            message = f"{label} must match the pattern {spec.pattern}, got {_show(value)}"
            errors.append(ParamError(label, "pattern", message, spec.pattern))
    return errors


def _coerce_scalar(spec: ParamSpec, value: object) -> tuple[object, list[ParamError]]:
    try:
        typed: object = _PARSERS[spec.type](spec, spec.name, value)
    except _Reject as reject:
        return None, [ParamError(spec.name, reject.rule, reject.message, reject.allowed)]
    return typed, _check_rules(spec, typed)


def _coerce_list(spec: ParamSpec, value: object) -> tuple[object, list[ParamError]]:
    if isinstance(value, str):
        # The form a command line or a query string can carry: "open,shipped".
        stripped = value.strip()
        items: Sequence[object] = [p.strip() for p in stripped.split(",")] if stripped else []
    elif isinstance(value, list | tuple):
        items = value
    else:
        message = f"{spec.name} must be a list (or comma-separated text), got {_show(value)}"
        return None, [ParamError(spec.name, "type", message)]
    errors: list[ParamError] = []
    if spec.max_items is not None and len(items) > spec.max_items:
        message = f"{spec.name} must have at most {spec.max_items} items, got {len(items)}"
        errors.append(ParamError(spec.name, "max_items", message, spec.max_items))
    typed: list[object] = []
    for index, item in enumerate(items):
        item_value, item_errors = _coerce_scalar(spec.item_spec(index), item)
        typed.append(item_value)
        errors.extend(item_errors)
    return typed, errors


def coerce(spec: ParamSpec, value: object) -> tuple[object, list[ParamError]]:
    """One present (non-null) value: its typed form and the problems with it."""
    if spec.type is ParamType.LIST:
        return _coerce_list(spec, value)
    return _coerce_scalar(spec, value)


def validate_params(specs: Mapping[str, ParamSpec], raw: object) -> dict[str, object]:
    """Typed values of every declared parameter, defaults filled, or InvalidParams listing
    every problem. An absent or null optional parameter without a default is None (NULL)."""
    if not isinstance(raw, dict):
        message = f"params must be a JSON object, got {_show(raw)}"
        raise InvalidParams([ParamError("", "type", message)])
    errors: list[ParamError] = []
    declared = list(specs)
    for key in raw:
        if key in specs:
            continue
        errors.append(_unknown(key, declared))
    values: dict[str, object] = {}
    for name, spec in specs.items():
        value = raw.get(name)
        if value is None:
            if spec.required:
                errors.append(ParamError(name, "required", f"{name} is required"))
            values[name] = spec.default
            continue
        values[name], problems = coerce(spec, value)
        errors.extend(problems)
    if errors:
        raise InvalidParams(errors)
    return values


def _unknown(key: object, declared: list[str]) -> ParamError:
    shown = key if isinstance(key, str) else _show(key)
    if key in RESERVED_NAMES:
        message = f"{key} cannot be given: it is always the job's owner"
        return ParamError(str(key), "unknown", message, tuple(declared))
    message = f"unknown parameter {_show(key)}; allowed: {_names(declared)}"
    if isinstance(key, str) and (close := difflib.get_close_matches(key, declared, n=1)):
        message += f" (did you mean {close[0]}?)"
    return ParamError(str(shown), "unknown", message, tuple(declared))
