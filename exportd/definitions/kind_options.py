"""Reading the output settings of a kind's definition: ``[kinds.NAME.options]`` (its
jobs' default options), ``locked_options``, ``[kinds.NAME.labels]`` (column headers)
and ``[kinds.NAME.xlsx]`` (what an xlsx export does at Excel's limits). Pure.

The options table is read by the parser a job's options go through
(``exportd.definitions.options``), so a default a job could not ask for cannot be
defined either. Problems are returned as text; the loader prefixes the kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from exportd import limits
from exportd.definitions.options.document import PATHS, read_document
from exportd.definitions.options.model import DEFAULT_OPTIONS, JobOptions, XlsxPolicy
from exportd.definitions.options.resolve import build, combination_problems
from exportd.definitions.params.declarations import unknown_key

OUTPUT_KEYS = frozenset({"options", "locked_options", "labels", "xlsx", "parquet_compression"})
# A parquet file's compression codec: zstd unless the kind says otherwise.
PARQUET_COMPRESSIONS = ("zstd", "snappy", "none")
XLSX_CHOICES: Mapping[str, tuple[str, ...]] = {
    "rows_over_limit": ("new_sheet", "fail"),
    "long_text": ("truncate", "fail"),
}


@dataclass(frozen=True)
class OutputSettings:
    options: JobOptions = DEFAULT_OPTIONS
    option_paths: Mapping[str, Any] = field(default_factory=dict)
    locked_options: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    xlsx: XlsxPolicy = field(default_factory=XlsxPolicy)
    parquet_compression: str = PARQUET_COMPRESSIONS[0]


def parse_output_settings(
    table: Mapping[str, object], datasets: Sequence[str], found: list[str]
) -> OutputSettings:
    """The kind's options, locks, labels and xlsx policy; problems appended to ``found``."""
    options, paths = _options(table.get("options"), datasets, found)
    return OutputSettings(
        options=options,
        option_paths=MappingProxyType(paths),
        locked_options=_locked(table.get("locked_options"), found),
        labels=MappingProxyType(_labels(table.get("labels"), found)),
        xlsx=_xlsx(table.get("xlsx"), found),
        parquet_compression=_parquet_compression(table.get("parquet_compression"), found),
    )


def _parquet_compression(raw: object, found: list[str]) -> str:
    if raw is None:
        return PARQUET_COMPRESSIONS[0]
    if raw not in PARQUET_COMPRESSIONS:
        found.append(
            f"parquet_compression must be one of {', '.join(PARQUET_COMPRESSIONS)}, got {raw!r}"
        )
        return PARQUET_COMPRESSIONS[0]
    return str(raw)


def _options(
    raw: object, datasets: Sequence[str], found: list[str]
) -> tuple[JobOptions, dict[str, Any]]:
    if raw is None:
        return DEFAULT_OPTIONS, {}
    if not isinstance(raw, dict):
        found.append("options must be a table ([kinds.<kind>.options])")
        return DEFAULT_OPTIONS, {}
    given, problems = read_document(raw, datasets)
    if not problems:
        options = build(given)
        problems = combination_problems(options)
        if not problems:
            return options, given
    # The parser names job fields (options.csv.delimiter); the definition has the same.
    found.extend(f"[options] {p.message}" for p in problems)
    return DEFAULT_OPTIONS, {}


def _locked(raw: object, found: list[str]) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        found.append('locked_options must be a list of option paths, e.g. ["csv.delimiter"]')
        return ()
    unknown = [p for p in raw if p not in PATHS]
    if unknown:
        found.extend(
            f"locked_options: {p!r} is not an option path; known: {', '.join(PATHS)}"
            for p in unknown
        )
        return ()
    return tuple(dict.fromkeys(raw))


def _labels(raw: object, found: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        found.append('labels must be a table of column = "Header text"')
        return {}
    labels: dict[str, str] = {}
    problems: list[str] = []
    for column, label in raw.items():
        if problem := limits.identifier_problem(column, limits.OPTIONS_COLUMN_MAX_BYTES):
            problems.append(f"labels: the column name {column!r} {problem}")
        if not isinstance(label, str):
            problems.append(f"labels.{column} must be a string, got {type(label).__name__}")
        elif problem := limits.identifier_problem(label, limits.LABEL_MAX_BYTES):
            problems.append(f"labels.{column} {problem}")
        else:
            labels[column] = label
    found.extend(problems)
    return {} if problems else labels


def _xlsx(raw: object, found: list[str]) -> XlsxPolicy:
    if raw is None:
        return XlsxPolicy()
    if not isinstance(raw, dict):
        found.append("xlsx must be a table ([kinds.<kind>.xlsx])")
        return XlsxPolicy()
    problems = [
        f"xlsx: {unknown_key(k, frozenset(XLSX_CHOICES))}" for k in raw if k not in XLSX_CHOICES
    ]
    chosen: dict[str, Any] = {}
    for key, allowed in XLSX_CHOICES.items():
        value = raw.get(key, allowed[0])
        if value not in allowed:
            problems.append(f"xlsx.{key} must be one of {', '.join(allowed)}, got {value!r}")
        else:
            chosen[key] = value
    found.extend(problems)
    return XlsxPolicy() if problems else XlsxPolicy(**chosen)
