"""What an API request asks for, read and checked without any I/O.

Each reader collects every problem before it gives up, so that a caller
fixes a request in one round trip: a 400 lists all of them, each naming its
field.

Every caller string is bounded in bytes of UTF-8 where it enters, with the
numbers of ``exportd.limits`` (the table's CHECK constraints hold the same),
and a JSON body's nesting is bounded before any recursive decoder sees it.
The query string is read in ``exportd.api.query_params``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exportd import limits
from exportd.api.job_documents import kind_problems, options_document
from exportd.definitions import offered_formats
from exportd.definitions.kinds import Definitions, Kind
from exportd.definitions.offered_formats import default_format
from exportd.errors import ExportError
from exportd.limits import json_depth, text_problem
from exportd.queue.enqueue import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PRIORITY,
    MAX_ATTEMPTS_RANGE,
    PRIORITY_RANGE,
    NewJob,
    problems,
)

TIMESTAMP_MIN = datetime.fromisoformat(limits.TIMESTAMP_MIN_ISO)
TIMESTAMP_MAX = datetime.fromisoformat(limits.TIMESTAMP_MAX_ISO)

# A caller's X-Request-Id as echoed and logged: short, and nothing that could
# forge structure in a log line or a header. (Owners, kinds and dedupe keys are
# checked by ``limits.identifier_problem``, through ``queue.enqueue.problems``.)
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:\-]{{1,{limits.REQUEST_ID_MAX_BYTES}}}")


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class RequestInvalid(Exception):
    """A request that cannot be served as sent; ``errors`` lists every problem."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))


def request_id(presented: str | None) -> str:
    """The caller's request id when it is sane, else a new one.

    A caller's id ties our log lines to theirs; anything long or with
    characters that could forge log structure is replaced rather than echoed.
    """
    if presented and _REQUEST_ID.fullmatch(presented):
        return presented
    return uuid.uuid4().hex


def parse_job_id(raw: str) -> uuid.UUID | None:
    """The job id in a path, or None: a malformed id is an unknown id."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


_TIMESTAMP_HINT = "must be an ISO 8601 timestamp with a UTC offset, e.g. 2025-01-31T12:00:00Z"
_TIMESTAMP_RANGE = (
    f"must lie from {limits.TIMESTAMP_MIN_ISO} up to (not including) {limits.TIMESTAMP_MAX_ISO}"
)


def _aware(raw: str) -> datetime:
    """An ISO 8601 timestamp with its UTC offset, in UTC; ValueError saying why not."""
    try:
        value = datetime.fromisoformat(raw)  # Python 3.11 reads 'Z' too
    except ValueError:
        raise ValueError(_TIMESTAMP_HINT) from None
    if value.tzinfo is None:
        raise ValueError(_TIMESTAMP_HINT)
    try:
        # 9999-12-31T23:59:59-14:00 is a valid text whose UTC is past year 9999.
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(_TIMESTAMP_RANGE) from None


def parse_timestamp(raw: str) -> datetime:
    """A timestamp a caller sends (``run_after``, ``created_after``...), in UTC.

    ISO 8601 with a UTC offset (``Z`` or ``+02:00``), within
    ``[TIMESTAMP_MIN, TIMESTAMP_MAX)`` (``exportd.limits``: the driver stores
    0001-01-01T00:00:00Z as -infinity, and a later year cannot carry an
    offset in Python). ValueError with the reason, fit for a 400.
    """
    if len(raw) > limits.QUERY_VALUE_MAX_BYTES:
        raise ValueError(_TIMESTAMP_HINT)
    value = _aware(raw)
    if not TIMESTAMP_MIN <= value < TIMESTAMP_MAX:
        raise ValueError(_TIMESTAMP_RANGE)
    return value


def _shown(name: str) -> str:
    """A caller-chosen name as echoed in an error: never longer than a line."""
    return name if len(name) <= 64 else f"{name[:64]}..."


# --- JSON bodies -----------------------------------------------------------------------------


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):  # 1e400: Postgres's jsonb cannot hold infinity
        raise ValueError(f"the number {_shown(raw)} is out of range")
    return value


def _distinct_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 8259 leaves a repeated name's meaning to the reader: a proxy that takes
    # the first "owner" and this server, which would take the last, would
    # disagree about whose job it is. Refused, as two owner scopes are.
    document = dict(pairs)
    if len(document) < len(pairs):
        counts: dict[str, int] = {}
        for key, _ in pairs:
            counts[key] = counts.get(key, 0) + 1
        repeated = next(key for key, count in counts.items() if count > 1)
        raise ValueError(f"the key {_shown(repeated)!r} occurs more than once in one object")
    return document


def parse_json_body(raw: bytes) -> object:
    """A request body's JSON document, or RequestInvalid saying why not.

    UTF-8 only; nesting at most ``limits.REQUEST_JSON_MAX_DEPTH``, checked
    before decoding; no NaN, Infinity or number too large for a float, which
    Python reads but Postgres cannot store; no key repeated in an object, at any
    depth (which one was meant?). The body's size is bounded before
    this by the server (``limits.REQUEST_BODY_MAX_BYTES``, 413).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestInvalid([FieldError("", "the body is not UTF-8 text")]) from None
    if json_depth(text) > limits.REQUEST_JSON_MAX_DEPTH:
        raise RequestInvalid(
            [
                FieldError(
                    "",
                    "the body nests arrays and objects deeper than "
                    f"{limits.REQUEST_JSON_MAX_DEPTH} levels",
                )
            ]
        )
    try:
        return json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite,
            object_pairs_hook=_distinct_keys,
        )
    except (ValueError, RecursionError) as exc:
        raise RequestInvalid([FieldError("", f"the body is not JSON: {exc}")]) from None


def params_problems(params: Mapping[str, Any]) -> list[FieldError]:
    """What makes a params document one the table cannot hold: text Postgres
    refuses (NUL, lone surrogates, in a key or a value at any depth), and a
    size over ``limits.PARAMS_MAX_BYTES`` as JSON text, measured as the table's
    CHECK measures it (``limits.jsonb_text_bytes``). Walked without
    recursion; the body's depth bound already holds."""
    # (field to report, value): a top-level key reports as params.<key>.
    pending: list[tuple[str, object]] = [("params", k) for k in params]
    pending.extend((f"params.{_shown(k)}", v) for k, v in params.items())
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            if problem := text_problem(value):
                return [FieldError(where, f"{problem}, in keys and values alike")]
        elif isinstance(value, dict):
            pending.extend((where, k) for k in value)
            pending.extend((where, v) for v in value.values())
        elif isinstance(value, list):
            pending.extend((where, v) for v in value)
    size = limits.jsonb_text_bytes(params)
    if size > limits.PARAMS_MAX_BYTES:
        message = f"must be at most {limits.PARAMS_MAX_BYTES} bytes as JSON text (it has {size})"
        return [FieldError("params", message)]
    return []


# --- Enqueueing ----------------------------------------------------------------------------


_JOB_FIELDS = (
    "owner",
    "kind",
    "params",
    "format",
    "priority",
    "run_after",
    "max_attempts",
    "dedupe_key",
    "options",
)


def _text(body: Mapping[str, Any], name: str, errors: list[FieldError]) -> str | None:
    """The field's string; its value's rules are ``queue.enqueue.problems``'s."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, "must be a string"))
        return None
    return value


def _integer(
    body: Mapping[str, Any],
    name: str,
    bounds: tuple[int, int],
    errors: list[FieldError],
) -> int | None:
    """The field's whole number; its range is ``queue.enqueue.problems``'s."""
    value = body.get(name)
    if value is None:
        return None
    # JSON true is not 1, and 2.0 is a float that happens to be whole.
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(FieldError(name, f"must be a whole number from {bounds[0]} to {bounds[1]}"))
        return None
    return value


# Stands in for a value the body left out or gave with the wrong type, so that
# the queue's rules can judge the values it did give: its problems are not reported.
_ABSENT = "-"


def _value_problems(
    errors: list[FieldError],
    *,
    owner: str | None,
    kind: str | None,
    dedupe_key: str | None,
    priority: int | None,
    max_attempts: int | None,
) -> set[str]:
    """The queue's one check of a new job's values (``queue.enqueue.problems``) on
    the fields the body gave with the right type (those not None); the problems
    appended to ``errors``, the names of the refused fields returned."""
    given = {
        name
        for name, value in (
            ("owner", owner),
            ("kind", kind),
            ("dedupe_key", dedupe_key),
            ("priority", priority),
            ("max_attempts", max_attempts),
        )
        if value is not None
    }
    job = NewJob(
        _ABSENT if owner is None else owner,
        _ABSENT if kind is None else kind,
        priority=DEFAULT_PRIORITY if priority is None else priority,
        max_attempts=DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts,
        dedupe_key=dedupe_key,
    )
    refused = [(name, why) for name, why in problems(job) if name in given]
    errors.extend(FieldError(name, why) for name, why in refused)
    return {name for name, _ in refused}


def parse_new_job(
    body: object,
    definitions: Definitions,
    formats_for: Callable[[Kind | None], Sequence[str]],
    scope: str | None,
    zones: Container[str] | None = None,
) -> NewJob:
    """``POST /v1/jobs``: a job every check passed, or RequestInvalid listing every problem.

    The params and options are checked by the kind (``api.job_documents``), as the
    daemon checks them before the export; ``zones`` are the time zone names
    Postgres knows, for ``options.timezone``.
    """

    if not isinstance(body, dict):
        raise RequestInvalid([FieldError("", "the body must be a JSON object")])
    errors = [
        FieldError(_shown(name), f"unknown field; allowed: {', '.join(_JOB_FIELDS)}")
        for name in body
        if name not in _JOB_FIELDS
    ]

    owner = _text(body, "owner", errors)
    kind_name = body.get("kind")
    if not isinstance(kind_name, str):
        what = "is required" if kind_name is None else "must be a string"
        errors.append(FieldError("kind", f"{what}: the name of an export kind (GET /v1/kinds)"))
        kind_name = None
    dedupe_key = _text(body, "dedupe_key", errors)
    priority = _integer(body, "priority", PRIORITY_RANGE, errors)
    max_attempts = _integer(body, "max_attempts", MAX_ATTEMPTS_RANGE, errors)
    refused = _value_problems(
        errors,
        owner=owner,
        kind=kind_name,
        dedupe_key=dedupe_key,
        priority=priority,
        max_attempts=max_attempts,
    )

    if body.get("owner") is None:
        if scope is None:
            errors.append(FieldError("owner", "is required"))
        owner = scope
    elif "owner" not in refused and scope is not None and owner != scope:
        errors.append(FieldError("owner", "must equal the owner scope of the request"))

    params = body.get("params", {})
    if params is None:
        params = {}
    if isinstance(params, dict):
        errors.extend(params_problems(params))
    found: list[tuple[str, str]] = []
    options = options_document(body.get("options"), found)
    kind: Kind | None = None
    if kind_name is not None and "kind" not in refused:
        try:
            kind = definitions.require(kind_name)
        except ExportError as exc:  # an unknown kind
            errors.append(FieldError("kind", exc.message))
    found.extend(kind_problems(kind, params, options, zones))
    errors.extend(FieldError(field, message) for field, message in found)

    known_formats = list(formats_for(kind))
    fmt = body.get("format")
    if fmt is None:
        fmt = default_format(tuple(known_formats))
    elif fmt not in known_formats:
        missing = offered_formats.not_installed(fmt)  # an extra this daemon lacks
        known = f"must be one of {', '.join(known_formats)}"
        errors.append(FieldError("format", missing or known))

    run_after = None
    raw_run_after = body.get("run_after")
    if raw_run_after is not None:
        try:
            if not isinstance(raw_run_after, str):
                raise ValueError(_TIMESTAMP_HINT)
            run_after = parse_timestamp(raw_run_after)
        except ValueError as exc:
            errors.append(FieldError("run_after", str(exc)))

    if errors:
        raise RequestInvalid(errors)
    # Every check above passed, so these hold; mypy learns it here.
    assert owner is not None
    assert isinstance(kind_name, str)
    assert isinstance(params, dict)
    return NewJob(
        owner,
        kind_name,
        params,
        str(fmt),
        DEFAULT_PRIORITY if priority is None else priority,
        run_after,
        DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts,
        dedupe_key,
        options,
    )
