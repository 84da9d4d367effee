"""A JSON Schema of the options document a job of a kind may carry. Pure.

It says the shape ``exportd.definitions.options.document`` reads; the daemon's checks
are the parser's (a locked option, an unknown time zone, a decimal comma with a comma
delimiter are refused by the daemon even where the schema cannot say so). The kind's
resolved defaults are the ``default`` of each property, and its locked paths are
listed under ``x-exportd-locked``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exportd import limits
from exportd.definitions.options.document import (
    BIG_NUMBERS,
    CSV_PROFILES,
    DELIMITERS,
    LINE_TERMINATORS,
)
from exportd.definitions.options.model import JobOptions
from exportd.definitions.options.resolve import to_document


def _names() -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": limits.OPTIONS_COLUMNS_MAX,
        "uniqueItems": True,
        "items": {"type": "string", "minLength": 1, "maxLength": limits.OPTIONS_COLUMN_MAX_BYTES},
    }


def options_schema(
    defaults: JobOptions | None = None,
    locked: Sequence[str] = (),
    datasets: Sequence[str] = (),
) -> dict[str, Any]:
    """The schema of an options document; with a kind's ``defaults``, ``locked`` paths
    and dataset names, that kind's."""
    shown = to_document(defaults) if defaults is not None else {}
    csv_defaults = shown.get("csv", {})
    columns: dict[str, Any] = {
        "description": "The output columns, in order, by name; or an object of such lists "
        "by dataset name (a kind with several datasets).",
        "oneOf": [
            _names(),
            {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": _names(),
                **({"propertyNames": {"enum": list(datasets)}} if datasets else {}),
            },
        ],
    }
    csv: dict[str, Any] = {
        "profile": {"type": "string", "enum": list(CSV_PROFILES)},
        "delimiter": {"type": "string", "enum": list(DELIMITERS)},
        "bom": {"type": "boolean"},
        "header": {"type": "boolean"},
        "null": {
            "type": "string",
            "maxLength": limits.OPTIONS_NULL_MAX_BYTES,
            "pattern": '^[^\\r\\n"]*$',
        },
        "line_terminator": {"type": "string", "enum": list(LINE_TERMINATORS)},
        "formula_guard": {"type": "boolean"},
        "decimal_comma": {
            "type": "boolean",
            "description": "Numeric columns with a decimal comma; needs a delimiter other "
            'than ",".',
        },
    }
    for key, value in csv_defaults.items():
        csv[key]["default"] = value
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "options",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "timezone": {
                "type": "string",
                "description": "An IANA time zone name the database knows (Europe/Zurich); "
                "default: the daemon's EXPORTD_EXPORT_TIMEZONE.",
                "maxLength": limits.OPTIONS_TIMEZONE_MAX_BYTES,
                "pattern": "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$",
            },
            "columns": columns,
            "csv": {"type": "object", "additionalProperties": False, "properties": csv},
            "json": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "big_numbers": {
                        "type": "string",
                        "enum": list(BIG_NUMBERS),
                        "default": shown.get("json", {}).get("big_numbers", "number"),
                    }
                },
            },
            "split_rows": {
                "type": "integer",
                "minimum": 1,
                "maximum": limits.OPTIONS_SPLIT_ROWS_MAX,
                "description": "At most this many rows per file (per sheet in xlsx).",
            },
        },
    }
    for key in ("timezone", "columns", "split_rows"):
        if key in shown:
            schema["properties"][key]["default"] = shown[key]
    if locked:
        # An annotation: validators ignore it; the daemon refuses a locked option set
        # to anything but its default.
        schema["x-exportd-locked"] = list(locked)
    return schema
