"""How a declared parameter is described outside Python: the Postgres type its value is
cast to in a kind's compiled query, and the JSON Schema of the form a request sends it in.

Both are derived from a ParamSpec and neither takes part in validating params.
"""

from __future__ import annotations

from collections.abc import Mapping

from exportd.params import ParamSpec, ParamType, to_json

_PG_TYPES: Mapping[ParamType, str] = {
    ParamType.STRING: "text",
    ParamType.ENUM: "text",
    ParamType.INTEGER: "bigint",
    ParamType.NUMBER: "numeric",
    ParamType.BOOLEAN: "boolean",
    ParamType.DATE: "date",
    ParamType.DATETIME: "timestamptz",
}


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
