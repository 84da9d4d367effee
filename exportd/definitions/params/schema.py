"""How a declared parameter is described outside Python: the Postgres type its value is
cast to in a kind's compiled query, and the JSON Schema of the form a request sends it in.

Both are derived from a ParamSpec and neither takes part in validating params.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

from exportd.definitions.params.spec import ParamSpec, ParamType
from exportd.definitions.params.values import to_json

_PG_TYPES: Mapping[ParamType, str] = {
    ParamType.STRING: "text",
    ParamType.ENUM: "text",
    ParamType.INTEGER: "bigint",
    ParamType.NUMBER: "numeric",
    ParamType.BOOLEAN: "boolean",
    ParamType.DATE: "date",
    ParamType.DATETIME: "timestamptz",
}


# Text that `exportd check` binds for a string parameter: every character that could end a
# literal, open a comment or look like a placeholder, so that a statement that is only
# right for tame values fails the check rather than a job.
PROBE_TEXT = 'it\'s \\ "q" $1 $$ $a$ :owner -- /* */ ;\nnext line'

_PROBES: Mapping[ParamType, object] = {
    ParamType.STRING: PROBE_TEXT,
    ParamType.INTEGER: 0,
    ParamType.NUMBER: Decimal("0.5"),
    ParamType.BOOLEAN: True,
    ParamType.DATE: date(2000, 1, 1),
    ParamType.DATETIME: datetime(2000, 1, 1, tzinfo=UTC),
}


def probe_value(spec: ParamSpec) -> object:
    """A typed value of ``spec``'s type for ``exportd check`` to bind: its default when it
    has one, an allowed value of an enum, hostile text for a string, two items for a list.
    Not validated against bounds: the check parses and plans, it does not run the query."""
    if spec.default is not None:
        return spec.default
    if spec.type is ParamType.ENUM:
        return (spec.values or ("",))[0]
    if spec.type is ParamType.LIST:
        return [probe_value(spec.item_spec(i)) for i in range(2)]
    return _PROBES[spec.type]


# --- Casts and schemas ---------------------------------------------------------------------


def pg_type(spec: ParamSpec) -> str:
    """The Postgres type a parameter is cast to in the compiled query."""
    if spec.type is ParamType.LIST:
        assert spec.items is not None
        return _PG_TYPES[spec.items] + "[]"
    return _PG_TYPES[spec.type]


def _value_schema(spec: ParamSpec) -> dict[str, object]:
    schema: dict[str, object]
    match spec.type:
        case ParamType.STRING:
            schema = {"type": "string"}
            if spec.min_length is not None:
                schema["minLength"] = spec.min_length
            if spec.max_length is not None:
                schema["maxLength"] = spec.max_length
            if spec.pattern is not None:
                # JSON Schema patterns search; ours must match the whole value.
                schema["pattern"] = f"^(?:{spec.pattern})$"
        case ParamType.ENUM:
            schema = {"type": "string", "enum": list(spec.values or ())}
        case ParamType.INTEGER | ParamType.NUMBER:
            schema = {"type": "integer" if spec.type is ParamType.INTEGER else "number"}
            if spec.min is not None:
                schema["minimum"] = to_json(spec.min)
            if spec.max is not None:
                schema["maximum"] = to_json(spec.max)
        case ParamType.BOOLEAN:
            schema = {"type": "boolean"}
        case ParamType.DATE | ParamType.DATETIME:
            schema = {
                "type": "string",
                "format": "date" if spec.type is ParamType.DATE else "date-time",
            }
            # formatMinimum/formatMaximum: the vocabulary ajv-formats understands; other
            # validators ignore them, which only makes the schema looser than the check.
            if spec.min is not None:
                schema["formatMinimum"] = to_json(spec.min)
            if spec.max is not None:
                schema["formatMaximum"] = to_json(spec.max)
        case ParamType.LIST:
            schema = {"type": "array", "items": _value_schema(spec.item_spec(0))}
            if spec.max_items is not None:
                schema["maxItems"] = spec.max_items
    return schema


def json_schema(spec: ParamSpec) -> dict[str, object]:
    """A JSON Schema for the canonical JSON form of one parameter.

    Anything it accepts, validation accepts too; validation is also more lenient (strings
    for numbers and booleans, comma-separated lists), which the schema does not describe.
    """
    schema = _value_schema(spec)
    if spec.description:
        schema["description"] = spec.description
    if spec.default is not None:
        schema["default"] = to_json(spec.default)
    return schema
