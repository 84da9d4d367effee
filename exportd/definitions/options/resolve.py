"""A job's options merged over its kind's: the resolved ``JobOptions``. Pure.

The merge is by path (``exportd.definitions.options.document``): what the job sets
wins over what the kind sets, which wins over the built-in defaults; ``columns`` is
one option (a job's list replaces the kind's whole). Then:

- the ``excel`` profile makes ``bom`` true, ``line_terminator`` CRLF and
  ``formula_guard`` true, unless the job or the kind sets them explicitly;
- a locked path (``locked_options``: ``"timezone"``, ``"csv.delimiter"``, ``"csv"`` for
  all of it) keeps the kind's value: a job that sets it to another value is refused,
  naming the option and the kind, and a job that sets it to the same value is not;
- options that contradict each other (a decimal comma with a comma delimiter, a NULL
  text holding the delimiter) are refused.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from exportd import limits
from exportd.definitions.options.document import (
    CSV_KEYS,
    JSON_KEYS,
    Given,
    read_document,
    show_choice,
)
from exportd.definitions.options.model import CsvOptions, JobOptions, JsonOptions
from exportd.definitions.params.spec import InvalidParams, ParamError
from exportd.definitions.params.values import _show

# What the excel profile changes, unless set explicitly.
EXCEL_DEFAULTS: Mapping[str, object] = MappingProxyType(
    {"csv.bom": True, "csv.line_terminator": "\r\n", "csv.formula_guard": True}
)
_LEAVES: Mapping[str, tuple[str, ...]] = {
    "csv": tuple(f"csv.{k}" for k in CSV_KEYS),
    "json": tuple(f"json.{k}" for k in JSON_KEYS),
}


def build(given: Mapping[str, Any]) -> JobOptions:
    """The ``JobOptions`` of a merged document (by path, every value already checked)."""
    profile = given.get("csv.profile", "rfc4180")
    implied = EXCEL_DEFAULTS if profile == "excel" else {}
    base = CsvOptions()

    def csv(key: str) -> Any:
        path = f"csv.{key}"
        return given.get(path, implied.get(path, getattr(base, key)))

    columns = given.get("columns")
    return JobOptions(
        timezone=given.get("timezone"),
        columns=columns if isinstance(columns, tuple) else None,
        dataset_columns=MappingProxyType(dict(columns)) if isinstance(columns, dict) else {},
        csv=CsvOptions(**{key: csv(key) for key in CSV_KEYS}),
        json=JsonOptions(big_numbers=given.get("json.big_numbers", "number")),
        split_rows=given.get("split_rows"),
    )


def value_at(options: JobOptions, path: str) -> Any:
    """The value of one option path of resolved ``options`` (None: not set)."""
    if path == "columns":
        if options.columns is not None:
            return options.columns
        return dict(options.dataset_columns) or None
    group, _, key = path.partition(".")
    if group == "csv":
        return getattr(options.csv, key)
    if group == "json":
        return getattr(options.json, key)
    return getattr(options, path)


def combination_problems(options: JobOptions) -> list[ParamError]:
    """What the resolved ``options`` contradict themselves in."""
    found: list[ParamError] = []
    delimiter = options.csv.delimiter
    if options.csv.decimal_comma and delimiter == ",":
        found.append(
            ParamError(
                "options.csv.decimal_comma",
                "conflict",
                'options.csv.decimal_comma needs a delimiter other than ","; '
                'set csv.delimiter to ";" (as Excel does where a comma is the decimal mark)',
            )
        )
    if delimiter in options.csv.null:
        found.append(
            ParamError(
                "options.csv.null",
                "conflict",
                f"options.csv.null must not contain the delimiter ({show_choice(delimiter)})",
            )
        )
    return found


def leaf_paths(locked: Sequence[str]) -> tuple[str, ...]:
    """The option paths ``locked`` covers, each once (``"csv"`` is every csv.* path)."""
    leaves: list[str] = []
    for path in locked:
        for leaf in _LEAVES.get(path, (path,)):
            if leaf not in leaves:
                leaves.append(leaf)
    return tuple(leaves)


def _shown_value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value[:5]) + (", ...]" if len(value) > 5 else "]")
    if isinstance(value, dict):
        return "a list per dataset"
    if isinstance(value, str):
        return show_choice(value)
    return _show(value)


def lock_problems(
    kind_name: str, defaults: JobOptions, locked: Sequence[str], given: Given
) -> list[ParamError]:
    """A problem for each option the job sets that ``locked`` keeps at ``defaults``'s
    value, to a different value."""
    leaves = leaf_paths(locked)
    found: list[ParamError] = []
    for path, value in given.items():
        if path not in leaves:
            continue
        kept = value_at(defaults, path)
        if value == kept:
            continue
        found.append(
            ParamError(
                f"options.{path}",
                "locked",
                f"options.{path} is locked by kind {kind_name!r} "
                f"(it stays {_shown_value(kept)}); leave it out of the job's options",
            )
        )
    return found


def document_size_problem(raw: object, max_bytes: int = limits.OPTIONS_MAX_BYTES) -> str | None:
    """Why ``raw`` is over ``max_bytes`` as JSON text, or None; a document that cannot be
    written as JSON (too deep, a number too long) says so too."""
    try:
        # As the table's CHECK measures it: numbers in full, as jsonb writes them.
        size = limits.jsonb_text_bytes(raw)
    except (ValueError, TypeError, RecursionError):
        return "options must be a JSON document of plain values"
    if size > max_bytes:
        return f"options must be at most {max_bytes:,} bytes as JSON text (they are {size:,})"
    return None


def resolve(
    raw: object,
    *,
    kind_name: str,
    kind_given: Mapping[str, Any],
    defaults: JobOptions,
    locked: Sequence[str],
    datasets: Sequence[str],
    zones: Container[str] | None = None,
) -> JobOptions:
    """A job's options document ``raw`` merged over its kind's (``kind_given`` as
    read from the definition, ``defaults`` resolved from it), or InvalidParams listing
    every problem. ``zones``, when given, are the time zone names Postgres knows
    (``pg_timezone_names``); without it only the name's shape is checked."""
    if raw is None or raw == {}:
        return defaults
    if (problem := document_size_problem(raw)) is not None:
        raise InvalidParams([ParamError("options", "size", problem)])
    given, found = read_document(raw, datasets)
    found.extend(lock_problems(kind_name, defaults, locked, given))
    zone = given.get("timezone")
    if zones is not None and isinstance(zone, str) and zone not in zones:
        found.append(unknown_zone(zone))
    if found:
        raise InvalidParams(found)
    merged = {**kind_given, **given}
    # A locked option keeps the kind's value even where another option would change
    # it (the profile implies bom, line_terminator and formula_guard).
    for leaf in leaf_paths(locked):
        kept = value_at(defaults, leaf)
        if kept is None:
            merged.pop(leaf, None)
        else:
            merged[leaf] = kept
    options = build(merged)
    found = combination_problems(options)
    if found:
        raise InvalidParams(found)
    return options


def unknown_zone(zone: str) -> ParamError:
    return ParamError(
        "options.timezone",
        "unknown_zone",
        f"options.timezone {_show(zone)} is not a time zone the database knows "
        "(see pg_timezone_names; names are case-sensitive, e.g. Europe/Zurich)",
    )


def to_document(options: JobOptions) -> dict[str, Any]:
    """Resolved ``options`` as an options document: every csv and json option, and
    timezone, columns and split_rows when set."""
    document: dict[str, Any] = {}
    if options.timezone is not None:
        document["timezone"] = options.timezone
    columns = value_at(options, "columns")
    if isinstance(columns, tuple):
        document["columns"] = list(columns)
    elif isinstance(columns, dict):
        document["columns"] = {name: list(names) for name, names in columns.items()}
    document["csv"] = {key: getattr(options.csv, key) for key in CSV_KEYS}
    document["json"] = {key: getattr(options.json, key) for key in JSON_KEYS}
    if options.split_rows is not None:
        document["split_rows"] = options.split_rows
    return document


def shape_problems(raw: object) -> list[ParamError]:
    """The problems of an options document read without its kind (the kind is unknown,
    or not loaded): its size and each option on its own."""
    if raw is None or raw == {}:
        return []
    if (problem := document_size_problem(raw)) is not None:
        return [ParamError("options", "size", problem)]
    return read_document(raw, None)[1]
