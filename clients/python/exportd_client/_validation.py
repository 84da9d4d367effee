"""The checks a new job must pass before it is sent, in the daemon's words.

The bounds are the queue table's named CHECK constraints (migrations
``0001_jobs``, ``0004_bounds``, ``0005_run_after_range``, ``0010_job_options``,
``0011_data_formats``) and the numbers of the daemon's ``exportd/limits.py``;
the messages are those of ``exportd.limits.identifier_problem`` and
``exportd.queue.enqueue.problems``, so that a refusal reads the same whether
the client or the daemon made it. Bytes, not characters: every bound counts
bytes of UTF-8. What only the daemon knows (the kinds, their params' schemas)
is checked by the daemon: over HTTP as a 400, for a row inserted with SQL as
a ``failed`` job (``error_kind`` ``unknown_kind`` or ``invalid_params``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from exportd_client._models import FieldProblem

OWNER_MAX_BYTES = 256
KIND_MAX_BYTES = 128
DEDUPE_KEY_MAX_BYTES = 256
PARAMS_MAX_BYTES = 64 * 1024
OPTIONS_MAX_BYTES = 16 * 1024
# Nesting of params and options: a value at level 32 or deeper is refused.
JSON_MAX_DEPTH = 32
PRIORITY_RANGE = (-32768, 32767)
MAX_ATTEMPTS_RANGE = (1, 100)
# jobs_format_known (0011_data_formats).
FORMATS = (
    "csv",
    "csv.gz",
    "jsonl",
    "jsonl.gz",
    "json",
    "zip",
    "xlsx",
    "parquet",
    "csv.zst",
    "jsonl.zst",
)
# What the HTTP API takes for run_after (exportd/limits.py TIMESTAMP_MIN_ISO and
# TIMESTAMP_MAX_ISO), which lies within what the table takes (jobs_run_after_range).
RUN_AFTER_MIN = datetime(1970, 1, 1, tzinfo=UTC)
RUN_AFTER_MAX = datetime(9999, 1, 1, tzinfo=UTC)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text_problem(text: str, max_bytes: int | None = None) -> str | None:
    """Why ``text`` cannot be stored, or None (``exportd.limits.text_problem``)."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    if max_bytes is not None and size > max_bytes:
        return f"must be at most {max_bytes} bytes of UTF-8 (it has {size})"
    return None


def identifier_problem(text: str, max_bytes: int) -> str | None:
    """Why ``text`` cannot be an owner, kind or dedupe key, or None: non-empty,
    storable, free of control characters, at most ``max_bytes`` bytes."""
    if not text:
        return "must not be empty"
    problem = text_problem(text, max_bytes)
    if problem is None and _CONTROL.search(text):
        problem = "must not contain control characters"
    return problem


def _deepest_level(document: Any) -> int:
    """The deepest level of any value inside ``document`` (the document itself is
    level 0, ``{"a": 1}``'s 1 is level 1), as jsonpath's ``$.**{N}`` counts; read
    without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, level = pending.pop()
        deepest = max(deepest, level)
        if isinstance(value, dict):
            pending.extend((child, level + 1) for child in value.values())
        elif isinstance(value, list | tuple):
            pending.extend((child, level + 1) for child in value)
    return deepest


def _jsonb_growth(document: Any) -> int:
    """Bytes that Postgres's text of ``document`` as jsonb (what the table's CHECK
    measures) has beyond Python's JSON text: jsonb keeps numbers as numeric and
    writes them out in full, so Python's ``1e+300`` (6 bytes) is 301 digits
    there and ``1.5e-07`` is ``0.00000015``. Read without recursion."""
    growth = 0
    pending: list[Any] = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, float):
            shown = repr(value)
            if "e" in shown:
                growth += max(0, len(format(Decimal(shown), "f")) - len(shown))
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
    return growth


def _shown(name: str) -> str:
    """A caller's key as a field name: never longer than a line (the daemon's rule)."""
    return name if len(name) <= 64 else f"{name[:64]}..."


def _text_problem_within(name: str, document: dict[str, Any]) -> FieldProblem | None:
    """The first key or string value Postgres cannot store, found in the order the
    daemon walks (``exportd.api.requests.params_problems``), so that both name the
    same field: ``params`` for a top-level key, ``params.<key>`` below it."""
    pending: list[tuple[str, object]] = [(name, key) for key in document]
    pending.extend((f"{name}.{_shown(str(k))}", v) for k, v in document.items())
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            if problem := text_problem(value):
                return FieldProblem(where, f"{problem}, in keys and values alike")
        elif isinstance(value, dict):
            pending.extend((where, key) for key in value)
            pending.extend((where, child) for child in value.values())
        elif isinstance(value, list | tuple):
            pending.extend((where, child) for child in value)
    return None


def document_problems(name: str, document: Any, max_bytes: int) -> list[FieldProblem]:
    """What the table refuses in a params or options ``document``: not an object,
    text Postgres cannot store, over ``max_bytes`` as JSON text (as jsonb writes
    it: numbers in full, ``_jsonb_growth``), or nested so that
    a value lies at level ``JSON_MAX_DEPTH`` or deeper (jobs_params_depth)."""
    if not isinstance(document, dict):
        return [FieldProblem(name, "must be a JSON object")]
    if (found := _text_problem_within(name, document)) is not None:
        return [found]
    try:
        rendered = json.dumps(document, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [FieldProblem(name, f"must be JSON: {exc}")]
    size = len(rendered.encode("utf-8")) + _jsonb_growth(document)
    if size > max_bytes:
        message = f"must be at most {max_bytes} bytes as JSON text (it has {size})"
        return [FieldProblem(name, message)]
    if (level := _deepest_level(document)) >= JSON_MAX_DEPTH:
        message = f"must hold no value {JSON_MAX_DEPTH} levels deep or deeper (one is {level})"
        return [FieldProblem(name, message)]
    return []


def job_problems(
    *,
    owner: str | None,
    kind: str,
    params: Any,
    format: str | None,
    priority: int | None,
    run_after: datetime | None,
    max_attempts: int | None,
    dedupe_key: str | None,
    options: Any,
) -> list[FieldProblem]:
    """Every problem of a new job at once, in the daemon's order and words; empty
    when the job may be sent. A value left None is not judged: the table's
    default stands for it, and over HTTP the owner scope stands for ``owner``."""
    found: list[FieldProblem] = []
    for name, text, max_bytes in (
        ("owner", owner, OWNER_MAX_BYTES),
        ("kind", kind, KIND_MAX_BYTES),
        ("dedupe_key", dedupe_key, DEDUPE_KEY_MAX_BYTES),
    ):
        if text is None:
            continue
        if not isinstance(text, str):
            found.append(FieldProblem(name, "must be a string"))
        elif why := identifier_problem(text, max_bytes):
            found.append(FieldProblem(name, why))
    for name, value, (low, high) in (
        ("priority", priority, PRIORITY_RANGE),
        ("max_attempts", max_attempts, MAX_ATTEMPTS_RANGE),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            found.append(FieldProblem(name, f"must be a whole number from {low} to {high}"))
    found.extend(document_problems("params", params, PARAMS_MAX_BYTES))
    if options is not None:
        found.extend(document_problems("options", options, OPTIONS_MAX_BYTES))
    if format is not None and format not in FORMATS:
        found.append(FieldProblem("format", f"must be one of {', '.join(FORMATS)}"))
    if run_after is not None:
        found.extend(_run_after_problems(run_after))
    return found


def _run_after_problems(run_after: datetime) -> list[FieldProblem]:
    if not isinstance(run_after, datetime) or run_after.tzinfo is None:
        hint = "must be an ISO 8601 timestamp with a UTC offset, e.g. 2025-01-31T12:00:00Z"
        return [FieldProblem("run_after", hint)]
    if not RUN_AFTER_MIN <= run_after < RUN_AFTER_MAX:
        return [
            FieldProblem(
                "run_after",
                "must lie from 1970-01-01T00:00:00+00:00 up to (not including) "
                "9999-01-01T00:00:00+00:00",
            )
        ]
    return []
