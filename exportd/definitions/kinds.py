"""Export kinds: what a job may ask for, as loaded from the definitions.

A ``Kind`` names an export, holds its typed parameters, its cross-field rules and its
datasets (each a query or a Python handler), and names the file it produces;
``Definitions`` holds the loaded kinds by name. ``exportd.definitions.loader`` builds them
from TOML, checking everything that can be checked without a database.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from exportd.definitions.options.model import DEFAULT_OPTIONS, DEFAULT_XLSX, JobOptions, XlsxPolicy
from exportd.definitions.options.resolve import resolve as _resolve_options
from exportd.definitions.options.schema import options_schema
from exportd.definitions.params.schema import json_schema
from exportd.definitions.params.spec import InvalidParams, ParamSpec
from exportd.definitions.params.validation import validate_params as _validate_params
from exportd.definitions.params.values import render
from exportd.definitions.placeholders import CompiledQuery, inline
from exportd.definitions.rules import Rule, check_rules
from exportd.errors import ErrorKind, ExportError
from exportd.handlers import Handler
from exportd.quotas import Quota

FILENAME_MAX_CHARS = 150
# Most file systems stop at 255 bytes; leave room for the extension and a suffix.
FILENAME_MAX_BYTES = 200
# Characters no file name may hold on some common system (Windows forbids the last seven).
_FILENAME_FORBIDDEN = frozenset('/\\:*?"<>|')
# Control, format (e.g. right-to-left overrides that disguise an extension), surrogate,
# private-use, unassigned and line/paragraph separator characters.
_FILENAME_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class Dataset:
    """One named result of a kind: a query, or a Python handler."""

    name: str
    description: str
    member_format: str  # "csv", "jsonl" or "parquet": how its rows are written inside a zip
    # "bytes" for a handler producing a file (a PDF, say); "files" for a query naming
    # stored objects, each copied into the zip (exportd.export.file_members).
    output: str = "rows"
    query: str | None = None
    compiled: CompiledQuery | None = None
    handler: Handler | None = None
    handler_ref: str | None = None
    extension: str | None = None  # of a bytes dataset's member

    def bind(self, owner: str, values: Mapping[str, object]) -> str:
        """The statement the export runs for validated ``values``: the query's own text
        with each placeholder replaced, at its place only, by the typed literal of its
        value (``placeholders.inline``). Raises ValueError for a value no literal can carry."""
        assert self.compiled is not None, f"dataset {self.name!r} has no query"
        # owner last: nothing in values may stand in for the job's owner.
        return inline(self.compiled, {**values, "owner": owner})

    @property
    def member_extension(self) -> str:
        return self.extension or self.member_format


@dataclass(frozen=True)
class Kind:
    """One kind of export, ready to validate params, bind its queries and name its file."""

    name: str
    description: str
    params: Mapping[str, ParamSpec]
    datasets: tuple[Dataset, ...]
    filename_template: str
    timeout_seconds: int
    source: str
    rules: tuple[Rule, ...] = ()
    max_bytes: int | None = None  # None: the daemon's EXPORTD_S3_MAX_EXPORT_BYTES
    max_duration_seconds: int | None = None  # None: the daemon's EXPORTD_MAX_JOB_DURATION
    quota: Quota | None = None  # None: an owner may ask for any number of exports
    # Where this kind's webhooks go, written by the operator in the definition
    # (never taken from a job or a request); None: EXPORTD_WEBHOOK_URL.
    webhook_url: str | None = None
    # The options a job gets unless it says otherwise ([kinds.NAME.options]), and the
    # option paths ("timezone", "csv.delimiter", "csv" for all of it) a job may not set.
    options: JobOptions = DEFAULT_OPTIONS
    locked_options: tuple[str, ...] = ()
    # Headers for columns, by column name ([kinds.NAME.labels]): CSV and xlsx.
    labels: Mapping[str, str] = field(default_factory=dict)
    xlsx: XlsxPolicy = DEFAULT_XLSX
    # The codec of its parquet files ([kinds.NAME] parquet_compression): zstd, snappy, none.
    parquet_compression: str = "zstd"
    # The options the definition sets, by path ("csv.delimiter"), as written: what a
    # job's options are merged over (exportd.definitions.options.resolve).
    option_paths: Mapping[str, object] = field(default_factory=dict)
    # Files datasets: a missing or changed object fails the job ("fail") or is listed
    # in the manifest ("list"); bucket/prefix entries narrowing EXPORTD_FILES_SOURCES.
    missing_files: str = "fail"
    files_sources: tuple[str, ...] = ()

    @property
    def query(self) -> str | None:
        """The first dataset's SQL (the whole export for a single-query kind)."""
        return self.datasets[0].query

    @property
    def compiled(self) -> CompiledQuery:
        compiled = self.datasets[0].compiled
        assert compiled is not None, f"kind {self.name!r} has no query"
        return compiled

    def validate(self, raw: object, now: datetime | None = None) -> dict[str, object]:
        """Typed params with defaults filled, or InvalidParams listing every problem:
        those of each field, then those of the cross-field rules."""
        values = _validate_params(self.params, raw)
        errors = check_rules(self.rules, values, now)
        if errors:
            raise InvalidParams(errors)
        return values

    def options_for(self, raw: object, zones: Container[str] | None = None) -> JobOptions:
        """A job's options document merged over this kind's defaults, or InvalidParams
        listing every problem (each field named ``options.<path>``). ``zones``: the
        time zone names Postgres knows, when the caller has them (the API)."""
        return _resolve_options(
            raw,
            kind_name=self.name,
            kind_given=self.option_paths,
            defaults=self.options,
            locked=self.locked_options,
            datasets=tuple(d.name for d in self.datasets),
            zones=zones,
        )

    def check(
        self, params: object, options: object, zones: Container[str] | None = None
    ) -> tuple[dict[str, object], JobOptions]:
        """A job's typed params and resolved options, or InvalidParams listing the
        problems of both, params first."""
        errors = []
        values: dict[str, object] = {}
        resolved = self.options
        try:
            values = self.validate(params)
        except InvalidParams as exc:
            errors.extend(exc.errors)
        try:
            resolved = self.options_for(options, zones)
        except InvalidParams as exc:
            errors.extend(exc.errors)
        if errors:
            raise InvalidParams(errors)
        return values, resolved

    def options_schema(self) -> dict[str, object]:
        """A JSON Schema of the options document a job of this kind may carry."""
        return options_schema(self.options, self.locked_options, [d.name for d in self.datasets])

    def bind(self, owner: str, values: Mapping[str, object]) -> str:
        """The first dataset's statement for validated ``values`` (see ``Dataset.bind``)."""
        return self.datasets[0].bind(owner, values)

    def filename(self, values: Mapping[str, object], extension: str) -> str:
        """The export's file name: the template filled from validated ``values``, made safe
        for S3 keys and every common file system, with ``extension`` appended."""
        fields: dict[str, object] = {**values, "kind": self.name}
        text = "".join(
            literal + ("" if field is None else render(fields.get(field)))
            for literal, field, _, _ in string.Formatter().parse(self.filename_template)
        )
        base = safe_filename(text) or self.name
        suffix = extension.lstrip(".")
        return f"{base}.{suffix}" if suffix else base

    def json_schema(self) -> dict[str, object]:
        """A JSON Schema of the params object a job of this kind carries."""
        schema: dict[str, object] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "type": "object",
            "properties": {name: json_schema(spec) for name, spec in self.params.items()},
            "required": [name for name, spec in self.params.items() if spec.required],
            "additionalProperties": False,
        }
        if self.description:
            schema["description"] = self.description
        if self.rules:
            # An annotation keyword: validators ignore it, clients (forms, the API's
            # callers) learn the cross-field rules the daemon will enforce.
            schema["x-exportd-rules"] = [rule.describe() for rule in self.rules]
        return schema


def safe_filename(text: str) -> str:
    """``text`` as a file name: unsafe characters replaced by '_', no leading or trailing
    dots or spaces, at most FILENAME_MAX_CHARS characters and FILENAME_MAX_BYTES bytes.
    May be empty."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        "_"
        if c in _FILENAME_FORBIDDEN or unicodedata.category(c) in _FILENAME_BAD_CATEGORIES
        else c
        for c in text
    )
    # Leading dots hide a file (and "." and ".." are not files); trailing ones vanish on
    # Windows.
    text = text.strip(" .")[:FILENAME_MAX_CHARS]
    while len(text.encode("utf-8")) > FILENAME_MAX_BYTES:
        text = text[:-1]
    return text.rstrip(" .")


class Definitions(Mapping[str, Kind]):
    """The loaded kinds, by name, in the order they were defined."""

    def __init__(self, kinds: Iterable[Kind]) -> None:
        self._kinds = {kind.name: kind for kind in kinds}

    def __getitem__(self, name: str) -> Kind:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def quota_of(self, name: str) -> Quota | None:
        """The quota of the kind called ``name``; None when it has none or there is
        no such kind (a job of it then fails as unknown_kind)."""
        kind = self._kinds.get(name)
        return None if kind is None else kind.quota

    def require(self, name: str) -> Kind:
        """The kind called ``name``, or the UNKNOWN_KIND error a job asking for it fails with."""
        kind = self._kinds.get(name)
        if kind is None:
            known = ", ".join(sorted(self._kinds)) or "none"
            raise ExportError(
                ErrorKind.UNKNOWN_KIND,
                f"no export kind named {name!r} is defined (known kinds: {known})",
            )
        return kind
