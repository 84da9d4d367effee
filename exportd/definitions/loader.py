"""Reading export definitions: the TOML files that define the kinds a job may ask for.

A definition names a kind, declares its typed parameters and gives the SQL that produces
it. Everything that can be checked without a database is checked at load time, and every
problem in every file is reported at once: a daemon that starts has no definition that
can fail on its structure later. See docs/definitions.md for the format.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from exportd.definitions.files_policy import FILES_KEYS, parse_files_policy
from exportd.definitions.kind_options import OUTPUT_KEYS, parse_output_settings
from exportd.definitions.kinds import Dataset, Definitions, Kind
from exportd.definitions.params.declarations import SpecError, parse_spec, unknown_key
from exportd.definitions.params.schema import pg_type
from exportd.definitions.params.spec import ParamSpec
from exportd.definitions.placeholders import CompiledQuery, UnknownNames, compile_named
from exportd.definitions.python_datasets import HandlerNotFound, load_handler
from exportd.definitions.rules import parse_rules
from exportd.definitions.webhook_url import webhook_url_problem
from exportd.quotas import Quota, parse_quota

KIND_NAME_RE = re.compile(r"[a-z][a-z0-9_-]*")
# A dataset name becomes a file name inside a zip: keep it plain.
DATASET_NAME_RE = KIND_NAME_RE
# The keys that define one dataset; at the kind level they define its only dataset.
DATASET_KEYS = frozenset({"query", "handler", "format", "output", "extension", "description"})
KIND_KEYS = frozenset(
    {
        "description",
        "filename",
        "timeout",
        "params",
        "datasets",
        "rules",
        "max_bytes",
        "max_duration",
        "quota",
        "webhook_url",
        *OUTPUT_KEYS,
        *FILES_KEYS,
        *(DATASET_KEYS - {"description"}),
    }
)
# How a dataset's rows are written as a member of a zip bundle.
MEMBER_FORMATS = ("csv", "jsonl", "parquet")
OUTPUTS = ("rows", "bytes", "files")
EXTENSION_RE = re.compile(r"[a-z0-9]{1,10}")
# Seven days: a bound on a typo rather than on any real export.
MAX_DURATION_SECONDS = 86_400 * 7
DEFAULT_TIMEOUT_SECONDS = 600
# A day: anything longer is more likely milliseconds typed as seconds than a real export.
MAX_TIMEOUT_SECONDS = 86_400
DEFAULT_FILENAME = "{kind}"
# Placeholders a filename template may use besides its kind's parameters.
FILENAME_FIELDS = frozenset({"kind"})


class DefinitionError(Exception):
    """Definitions that cannot be used; ``problems`` lists every one, each naming its file."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{count} problem{'s' if count != 1 else ''} in the export definitions:"
        super().__init__("\n".join([header, *(f"  - {p}" for p in self.problems)]))


def load_definitions(path: Path) -> Definitions:
    """The kinds defined in a TOML file, or in every ``*.toml`` file of a directory."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.toml") if p.is_file())
        if not files:
            raise DefinitionError([f"{path}: no *.toml files in this directory"])
    elif path.exists():
        files = [path]
    else:
        raise DefinitionError([f"{path}: no such file or directory"])
    problems: list[str] = []
    found: list[tuple[str, str, Kind | None]] = []
    for file in files:
        try:
            text = file.read_bytes().decode("utf-8")
        except OSError as error:
            problems.append(f"{file}: cannot be read: {error.strerror or error}")
            continue
        except UnicodeDecodeError as error:
            problems.append(f"{file}: is not UTF-8 text (bad byte at offset {error.start})")
            continue
        found.extend(_parse_document(text, str(file), problems))
    return _registry(found, problems)


def definitions_from_text(text: str, source: str = "<string>") -> Definitions:
    """The kinds defined in one TOML document."""
    problems: list[str] = []
    return _registry(_parse_document(text, source, problems), problems)


def _registry(found: list[tuple[str, str, Kind | None]], problems: list[str]) -> Definitions:
    # Kinds that failed to load still count here, so a duplicate is reported either way.
    first_source: dict[str, str] = {}
    for name, source, _ in found:
        if name in first_source:
            problems.append(f"kind '{name}' is defined twice: in {first_source[name]} and {source}")
        else:
            first_source[name] = source
    if problems:
        raise DefinitionError(problems)
    return Definitions(kind for _, _, kind in found if kind is not None)


def _parse_document(
    text: str, source: str, problems: list[str]
) -> list[tuple[str, str, Kind | None]]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        problems.append(f"{source}: invalid TOML: {error}")
        return []
    for key in document:
        if key != "kinds":
            problems.append(f"{source}: {unknown_key(key, frozenset({'kinds'}))}")
    kinds = document.get("kinds")
    if not isinstance(kinds, dict) or not kinds:
        problems.append(f"{source}: defines no kinds (expected [kinds.<name>] tables)")
        return []
    return [
        (name, source, _parse_kind(name, table, source, problems)) for name, table in kinds.items()
    ]


def _parse_kind(name: str, table: object, source: str, problems: list[str]) -> Kind | None:
    where = f"{source}: kind '{name}'"
    found: list[str] = []
    if not KIND_NAME_RE.fullmatch(name):
        found.append("a kind name must match [a-z][a-z0-9_-]*")
    if not isinstance(table, dict):
        problems.extend(f"{where}: {p}" for p in [*found, "must be a table"])
        return None
    found.extend(unknown_key(key, KIND_KEYS) for key in table if key not in KIND_KEYS)

    description = _string(table, "description", found) or ""
    timeout = _seconds(table, "timeout", DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, found)
    max_duration = _seconds(table, "max_duration", None, MAX_DURATION_SECONDS, found)
    max_bytes = table.get("max_bytes")
    if max_bytes is not None and (
        not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1
    ):
        found.append(f"max_bytes must be a positive whole number of bytes, got {max_bytes!r}")
    template = _string(table, "filename", found) or DEFAULT_FILENAME
    quota: Quota | None = None
    if "quota" in table:
        quota, quota_problems = parse_quota(table["quota"])
        found.extend(quota_problems)
    webhook_url = _string(table, "webhook_url", found)
    if webhook_url is not None and (problem := webhook_url_problem(webhook_url)):
        found.append(f"webhook_url {problem}")

    params, param_problems = _parse_params(table.get("params", {}))
    found.extend(param_problems)
    template_fields = _template_fields(template, params, found)
    rules, rule_problems = parse_rules(table.get("rules", []), params)
    found.extend(rule_problems)

    # Params that failed to parse are still declared: using them is not a second mistake.
    types = {"owner": "text"} | {
        p: pg_type(spec) if spec is not None else "unknown" for p, spec in params.items()
    }
    datasets = _parse_datasets(name, table, types, found)
    if datasets and not any(d.handler_ref for d in datasets):
        used = template_fields.union(*(d.compiled.names for d in datasets if d.compiled))
        queries = "the query" if len(datasets) == 1 else "any query"
        found.extend(
            f"param '{p}' is declared but used in neither {queries} nor the filename"
            for p, spec in params.items()
            if spec is not None and p not in used
        )
    output = parse_output_settings(table, [d.name for d in datasets], found)
    missing_files, files_sources = parse_files_policy(table, [d.output for d in datasets], found)

    if found:
        problems.extend(f"{where}: {p}" for p in found)
        return None
    specs = {p: spec for p, spec in params.items() if spec is not None}
    return Kind(
        name=name,
        description=description,
        params=MappingProxyType(specs),
        datasets=tuple(datasets),
        filename_template=template,
        timeout_seconds=timeout or DEFAULT_TIMEOUT_SECONDS,
        source=source,
        rules=tuple(rules),
        max_bytes=max_bytes,
        max_duration_seconds=max_duration,
        quota=quota,
        webhook_url=webhook_url,
        options=output.options,
        option_paths=output.option_paths,
        locked_options=output.locked_options,
        labels=output.labels,
        xlsx=output.xlsx,
        parquet_compression=output.parquet_compression,
        missing_files=missing_files,
        files_sources=files_sources,
    )


def _parse_datasets(
    kind: str, table: Mapping[str, object], types: Mapping[str, str], found: list[str]
) -> list[Dataset]:
    """The kind's datasets: its ``[kinds.<kind>.datasets.<name>]`` tables, or the one its
    own ``query``/``handler`` defines (named after the kind)."""
    inline = [key for key in ("query", "handler") if key in table]
    tables = table.get("datasets")
    if tables is None:
        if not inline:
            found.append("query is required (or handler, or [kinds.<kind>.datasets.<name>])")
            return []
        own = {k: v for k, v in table.items() if k in DATASET_KEYS - {"description"}}
        dataset = _parse_dataset(kind, own, types, found, "")
        return [] if dataset is None else [dataset]
    if inline or any(k in table for k in ("format", "output", "extension")):
        found.append(
            "a kind with datasets keeps query, handler, format, output and extension "
            "in its datasets"
        )
    if not isinstance(tables, dict) or not tables:
        found.append("datasets must hold at least one [kinds.<kind>.datasets.<name>] table")
        return []
    datasets: list[Dataset] = []
    for name, body in tables.items():
        prefix = f"dataset '{name}': "
        if not DATASET_NAME_RE.fullmatch(name):
            found.append(prefix + "a dataset name must match [a-z][a-z0-9_-]*")
        if not isinstance(body, dict):
            found.append(prefix + "must be a table")
            continue
        dataset = _parse_dataset(name, body, types, found, prefix)
        if dataset is not None:
            datasets.append(dataset)
    return datasets


def _parse_dataset(
    name: str,
    table: Mapping[str, object],
    types: Mapping[str, str],
    found: list[str],
    prefix: str,
) -> Dataset | None:
    problems: list[str] = [unknown_key(k, DATASET_KEYS) for k in table if k not in DATASET_KEYS]
    description = _string(table, "description", problems) or ""
    query = _string(table, "query", problems)
    reference = _string(table, "handler", problems)
    member_format = _choice(table, "format", MEMBER_FORMATS, problems)
    output = _choice(table, "output", OUTPUTS, problems)
    extension = _string(table, "extension", problems)
    if query is not None and reference is not None:
        problems.append("give either query or handler, not both")
    elif query is None and reference is None and "query" not in table:
        problems.append("query is required (or handler)")
    compiled = None
    if query is not None:
        if not query.strip():
            problems.append("query is empty")
        elif output == "bytes":
            problems.append('output = "bytes" is for handlers; a query produces rows')
        else:
            compiled = _compile(query, types, problems)
    handler = None
    if reference is not None:
        try:
            handler = load_handler(reference)
        except HandlerNotFound as exc:
            problems.append(f"handler {reference!r}: {exc}")
    if output == "bytes":
        if extension is None or not EXTENSION_RE.fullmatch(extension):
            problems.append('output = "bytes" needs extension = "<pdf, xlsx...>" (a-z, 0-9)')
        if "format" in table:
            problems.append("format applies to rows; a bytes dataset has an extension")
    elif extension is not None:
        problems.append('extension applies to output = "bytes" only')
    if output == "files" and (reference is not None or "format" in table):
        problems.append('output = "files" takes a query (key, bucket, path, size, sha256)')
    if problems:
        found.extend(prefix + p for p in problems)
        return None
    return Dataset(
        name=name,
        description=description,
        member_format=member_format,
        output=output,
        query=query,
        compiled=compiled,
        handler=handler,
        handler_ref=reference,
        extension=extension,
    )


def _compile(query: str, types: Mapping[str, str], problems: list[str]) -> CompiledQuery | None:
    try:
        return compile_named(query, types)
    except UnknownNames as error:
        declared = ", ".join(n for n in types if n != "owner") or "none"
        problems.extend(
            f"query uses :{unknown}, which is not a declared parameter (declared: {declared})"
            for unknown in error.unknown
        )
    except ValueError as error:
        problems.append(f"query: {error}")
    return None


def _seconds(
    table: Mapping[str, object], key: str, default: int | None, most: int, found: list[str]
) -> int | None:
    value = table.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        found.append(f"{key} must be a whole number of seconds, got {value!r}")
        return None
    if not 1 <= value <= most:
        found.append(f"{key} must be between 1 and {most} seconds, got {value}")
        return None
    return value


def _choice(
    table: Mapping[str, object], key: str, allowed: tuple[str, ...], found: list[str]
) -> str:
    value = table.get(key, allowed[0])
    if value not in allowed:
        found.append(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
        return allowed[0]
    assert isinstance(value, str)
    return value


def _parse_params(tables: object) -> tuple[dict[str, ParamSpec | None], list[str]]:
    """Every declared param (None for those with problems), and the problems."""
    if not isinstance(tables, dict):
        return {}, ["params must be a table of [kinds.<kind>.params.<name>] tables"]
    params: dict[str, ParamSpec | None] = {}
    problems: list[str] = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            problems.append(f"param '{name}' must be a table (e.g. type = \"string\")")
            params[name] = None
            continue
        try:
            params[name] = parse_spec(name, table)
        except SpecError as error:
            problems.extend(f"param '{name}': {p}" for p in error.problems)
            params[name] = None
    return params, problems


def _template_fields(template: str, params: Mapping[str, object], found: list[str]) -> set[str]:
    """The placeholders of a filename template, each checked to be a param or a builtin."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        found.append(f"filename {template!r} is not a valid template: {error}")
        return set()
    fields: set[str] = set()
    allowed = ", ".join([*params, *sorted(FILENAME_FIELDS)])
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if spec or conversion or (field not in params and field not in FILENAME_FIELDS):
            found.append(
                f"filename placeholder {{{field}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} is not allowed: use {{name}} with one of {allowed}"
            )
        if field not in FILENAME_FIELDS:
            fields.add(field)
    return fields


def _string(table: Mapping[str, object], key: str, found: list[str]) -> str | None:
    value = table.get(key)
    if value is None or isinstance(value, str):
        return value
    found.append(f"{key} must be a string, got {type(value).__name__}")
    return None
