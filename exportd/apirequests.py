"""What an API request asks for, read and checked without any I/O.

Each reader collects every problem before it gives up, so that a caller
fixes a request in one round trip: a 400 lists all of them, each naming its
field. The pagination cursor is opaque to callers but plain to us: the
(created_at, id) of the last job of a page, in URL-safe base64 JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exportd.definitions import Definitions, Kind
from exportd.errors import ExportError
from exportd.jobs import STATES
from exportd.params import InvalidParams

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Generous, but bounded: these end up in indexes, object keys and log lines.
MAX_OWNER_CHARS = 256
MAX_DEDUPE_KEY_CHARS = 256
SMALLINT = (-32768, 32767)
MAX_ATTEMPTS = (1, 100)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


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


def parse_timestamp(raw: str) -> datetime:
    """An ISO 8601 timestamp with its UTC offset (``Z`` or ``+02:00``)."""
    value = datetime.fromisoformat(raw)  # Python 3.11 reads 'Z' too
    if value.tzinfo is None:
        raise ValueError("no UTC offset")
    return value


def text_problem(text: str) -> str | None:
    """Why Postgres could not store ``text``, or None.

    A NUL character or a lone surrogate (JSON allows both) makes the driver or
    the server refuse the whole statement: a 400 naming the field, not a 500.
    """
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


_TIMESTAMP_HINT = "must be an ISO 8601 timestamp with a UTC offset, e.g. 2025-01-31T12:00:00Z"


# --- The owner scope -------------------------------------------------------------------------


def owner_scope(header: str | None, query: str | None) -> str | None:
    """The owner a request is confined to (header or query), or None for a service caller."""
    scopes = {s for s in (header, query) if s is not None}
    if len(scopes) > 1:
        raise RequestInvalid(
            [FieldError("owner_scope", "the X-Exportd-Owner header and owner_scope disagree")]
        )
    scope = scopes.pop() if scopes else None
    if scope is not None:
        problem = "must not be empty" if not scope else text_problem(scope)
        if problem is not None:
            raise RequestInvalid([FieldError("owner_scope", problem)])
    return scope


# --- Listing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps([self.created_at.isoformat(), str(self.id)], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            created, job_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            return cls(parse_timestamp(created), uuid.UUID(job_id))
        except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
            raise ValueError("not a cursor this API returned") from exc


@dataclass(frozen=True)
class ListQuery:
    owner: str
    states: list[str] | None
    kinds: list[str] | None
    created_after: datetime | None
    created_before: datetime | None
    limit: int
    cursor: Cursor | None


_LIST_PARAMS = frozenset(
    {"owner", "state", "kind", "created_after", "created_before", "limit", "cursor", "owner_scope"}
)


def parse_list_query(
    query: Mapping[str, str], multi: Mapping[str, list[str]], scope: str | None
) -> ListQuery:
    """``GET /v1/jobs``: ``query`` has each parameter's last value, ``multi`` all of them."""
    errors: list[FieldError] = []
    for name in sorted(set(query) - _LIST_PARAMS):
        errors.append(
            FieldError(name, f"unknown parameter; allowed: {', '.join(sorted(_LIST_PARAMS))}")
        )

    owner = query.get("owner")
    if owner is None:
        owner = scope
        if owner is None:
            errors.append(FieldError("owner", "is required"))
    elif problem := ("must not be empty" if not owner else text_problem(owner)):
        errors.append(FieldError("owner", problem))
    elif scope is not None and owner != scope:
        errors.append(FieldError("owner", "must equal the owner scope of the request"))

    states = multi.get("state") or None
    for state in states or ():
        if state not in STATES:
            errors.append(
                FieldError("state", f"unknown state {state!r}; one of {', '.join(STATES)}")
            )
    kinds = [k for k in multi.get("kind", []) if k] or None
    for kind in kinds or ():
        if problem := text_problem(kind):
            errors.append(FieldError("kind", problem))

    bounds: dict[str, datetime | None] = {}
    for name in ("created_after", "created_before"):
        raw = query.get(name)
        bounds[name] = None
        if raw is not None:
            try:
                bounds[name] = parse_timestamp(raw)
            except ValueError:
                errors.append(FieldError(name, _TIMESTAMP_HINT))

    limit = DEFAULT_LIMIT
    if "limit" in query:
        try:
            limit = int(query["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            errors.append(FieldError("limit", f"must be a whole number from 1 to {MAX_LIMIT}"))

    cursor = None
    if query.get("cursor"):
        try:
            cursor = Cursor.decode(query["cursor"])
        except ValueError as exc:
            errors.append(FieldError("cursor", str(exc)))

    if errors:
        raise RequestInvalid(errors)
    assert owner is not None
    return ListQuery(
        owner, states, kinds, bounds["created_after"], bounds["created_before"], limit, cursor
    )


# --- Enqueueing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewJob:
    owner: str
    kind: str
    params: dict[str, Any]
    format: str
    priority: int
    run_after: datetime | None
    max_attempts: int
    dedupe_key: str | None


_JOB_FIELDS = (
    "owner",
    "kind",
    "params",
    "format",
    "priority",
    "run_after",
    "max_attempts",
    "dedupe_key",
)


def _text(
    body: Mapping[str, Any], name: str, max_chars: int, errors: list[FieldError]
) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        errors.append(FieldError(name, "must be a non-empty string"))
        return None
    problem = text_problem(value)
    if problem is None and len(value) > max_chars:
        problem = f"must be at most {max_chars} characters"
    if problem is not None:
        errors.append(FieldError(name, problem))
        return None
    return value


def _integer(
    body: Mapping[str, Any],
    name: str,
    bounds: tuple[int, int],
    default: int,
    errors: list[FieldError],
) -> int:
    value = body.get(name)
    if value is None:
        return default
    # JSON true is not 1, and 2.0 is a float that happens to be whole.
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        errors.append(FieldError(name, f"must be a whole number from {bounds[0]} to {bounds[1]}"))
        return default
    return value


def parse_new_job(
    body: object,
    definitions: Definitions,
    formats_for: Callable[[Kind | None], Sequence[str]],
    scope: str | None,
) -> NewJob:
    """``POST /v1/jobs``: a job every check passed, or RequestInvalid listing every problem.

    The params are checked with the kind's own validator, the one the daemon
    runs before the export, so a job accepted here fails later only if the
    definitions change in between.
    """
    if not isinstance(body, dict):
        raise RequestInvalid([FieldError("", "the body must be a JSON object")])
    errors = [
        FieldError(name, f"unknown field; allowed: {', '.join(_JOB_FIELDS)}")
        for name in body
        if name not in _JOB_FIELDS
    ]

    owner = _text(body, "owner", MAX_OWNER_CHARS, errors)
    if body.get("owner") is None:
        if scope is None:
            errors.append(FieldError("owner", "is required"))
        owner = scope
    elif owner is not None and scope is not None and owner != scope:
        errors.append(FieldError("owner", "must equal the owner scope of the request"))

    kind_name = body.get("kind")
    params = body.get("params", {})
    if params is None:
        params = {}
    kind: Kind | None = None
    if not isinstance(kind_name, str) or not kind_name:
        errors.append(FieldError("kind", "is required: the name of an export kind (GET /v1/kinds)"))
    else:
        try:
            kind = definitions.require(kind_name)
            kind.validate(params)
        except InvalidParams as exc:
            errors.extend(
                FieldError(f"params.{e.field}" if e.field else "params", e.message)
                for e in exc.errors
            )
        except ExportError as exc:  # an unknown kind
            errors.append(FieldError("kind", exc.message))

    known_formats = list(formats_for(kind))
    fmt = body.get("format")
    if fmt is None:
        # csv, as in the table, unless the kind only fits in another (a bundle: zip).
        fmt = "csv" if "csv" in known_formats else known_formats[0]
    elif fmt not in known_formats:
        errors.append(FieldError("format", f"must be one of {', '.join(known_formats)}"))

    priority = _integer(body, "priority", SMALLINT, 0, errors)
    max_attempts = _integer(body, "max_attempts", MAX_ATTEMPTS, 5, errors)

    run_after = None
    raw_run_after = body.get("run_after")
    if raw_run_after is not None:
        try:
            if not isinstance(raw_run_after, str):
                raise ValueError("not a string")
            run_after = parse_timestamp(raw_run_after)
        except ValueError:
            errors.append(FieldError("run_after", _TIMESTAMP_HINT))

    dedupe_key = _text(body, "dedupe_key", MAX_DEDUPE_KEY_CHARS, errors)

    if errors:
        raise RequestInvalid(errors)
    # Every check above passed, so these hold; mypy learns it here.
    assert owner is not None
    assert isinstance(kind_name, str)
    assert isinstance(params, dict)
    return NewJob(owner, kind_name, params, str(fmt), priority, run_after, max_attempts, dedupe_key)
