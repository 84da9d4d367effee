"""What a request's query string asks for, read and checked without any I/O: its
decoding, the owner scope, and the filters and pagination of ``GET /v1/jobs``.

The pagination cursor is opaque to callers but plain to us: the (created_at, id) of the
last job of a page, in URL-safe base64 JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes

from exportd import limits
from exportd.api.requests import (
    FieldError,
    RequestInvalid,
    _aware,
    _shown,
    parse_timestamp,
)
from exportd.limits import identifier_problem, text_problem
from exportd.queue.job import STATES

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


# --- Query strings ---------------------------------------------------------------------------


def query_problems(raw_query: str) -> list[FieldError]:
    """What makes a raw (still percent-encoded) query string unreadable: a name or
    value whose bytes are not UTF-8, one problem per parameter, named as sent.

    The server's own decoding replaces such bytes with U+FFFD, so that 'caf%E9' and
    'caf%E8' would both be read as the one owner 'caf\ufffd': a value must be read
    as sent or refused, never read as another.
    """
    problems: list[FieldError] = []
    for part in raw_query.split("&"):
        raw_name, _, raw_value = part.partition("=")
        try:
            name = unquote_to_bytes(raw_name.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError:
            problems.append(FieldError(_shown(raw_name), "must be valid UTF-8 text"))
            continue
        try:
            unquote_to_bytes(raw_value.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError:
            problems.append(FieldError(_shown(name), "must be valid UTF-8 text"))
    return problems


# --- The owner scope -------------------------------------------------------------------------


def owner_scope(headers: list[str], queries: list[str]) -> str | None:
    """The owner a request is confined to, or None for a service caller.

    ``headers`` are every ``X-Exportd-Owner`` header of the request and
    ``queries`` every ``owner_scope`` value: all of them must name one owner
    (sent twice alike is fine), because serving any one of two owners would
    let whoever adds the second choose. The owner is bounded like the table's
    (``limits.OWNER_MAX_BYTES``): a header is no way around the body's check.
    """
    scopes = {*headers, *queries}
    if len(scopes) > 1:
        raise RequestInvalid(
            [
                FieldError(
                    "owner_scope",
                    f"names {len(scopes)} different owners (X-Exportd-Owner headers and "
                    "owner_scope values must all be equal)",
                )
            ]
        )
    scope = scopes.pop() if scopes else None
    if scope is not None and (problem := identifier_problem(scope, limits.OWNER_MAX_BYTES)):
        raise RequestInvalid([FieldError("owner_scope", problem)])
    return scope


def single_value(
    multi: Mapping[str, Sequence[str]], name: str, max_bytes: int, errors: list[FieldError]
) -> str | None:
    """The one value of query parameter ``name`` (None when absent); a problem is
    added to ``errors`` when it is given twice with different values (which one
    was meant?) or is longer than ``max_bytes``."""
    values = multi.get(name) or []
    if not values:
        return None
    if len(set(values)) > 1:
        errors.append(FieldError(name, "is given more than once, with different values"))
        return None
    if problem := text_problem(values[0], max_bytes):
        errors.append(FieldError(name, problem))
        return None
    return values[0]


# --- Listing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        created = self.created_at
        if created.tzinfo is None:  # the driver's ±infinity: see api.views.timestamp
            created = created.replace(tzinfo=UTC)
        raw = json.dumps([created.isoformat(), str(self.id)], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            created, job_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            # Any time a row holds, infinity (9999-12-31T23:59:59.999999) included.
            return cls(_aware(created), uuid.UUID(job_id))
        except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError) as exc:
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
    error_kinds: list[str] | None = None


_LIST_PARAMS = frozenset(
    {
        "owner",
        "state",
        "kind",
        "error_kind",
        "created_after",
        "created_before",
        "limit",
        "cursor",
        "owner_scope",
    }
)


def _repeated(
    multi: Mapping[str, Sequence[str]], name: str, max_bytes: int, errors: list[FieldError]
) -> list[str] | None:
    """Every non-empty value of a repeatable parameter (None: no filter), each at
    most ``max_bytes`` and at most ``limits.QUERY_VALUES_MAX`` of them."""
    values = [v for v in multi.get(name, []) if v]
    if len(values) > limits.QUERY_VALUES_MAX:
        errors.append(FieldError(name, f"may be given at most {limits.QUERY_VALUES_MAX} times"))
        return None
    for value in values:
        if problem := text_problem(value, max_bytes):
            errors.append(FieldError(name, problem))
            return None
    return values or None


def owner_param(
    multi: Mapping[str, Sequence[str]], scope: str | None, errors: list[FieldError]
) -> str | None:
    """The owner a list route reads: ``owner`` of the query string, or the
    request's ``scope`` when it gives none; a different owner than the scope's
    is a problem. Each problem appended to ``errors``; None only with one."""
    # owner_scope was read (and checked) into ``scope``; its values must agree alike.
    single_value(multi, "owner_scope", limits.OWNER_MAX_BYTES, errors)
    owner = single_value(multi, "owner", limits.OWNER_MAX_BYTES, errors)
    if owner is None:
        if "owner" not in multi:
            owner = scope
            if owner is None:
                errors.append(FieldError("owner", "is required"))
    elif problem := identifier_problem(owner, limits.OWNER_MAX_BYTES):
        errors.append(FieldError("owner", problem))
    elif scope is not None and owner != scope:
        errors.append(FieldError("owner", "must equal the owner scope of the request"))
    return owner


def page_params(
    multi: Mapping[str, Sequence[str]], errors: list[FieldError]
) -> tuple[int, Cursor | None]:
    """A keyset page's ``limit`` (1 to MAX_LIMIT, default DEFAULT_LIMIT) and
    ``cursor`` (None: the first page) from the query string ``multi``; each
    problem appended to ``errors``, as every list route reports them."""
    limit = DEFAULT_LIMIT
    raw_limit = single_value(multi, "limit", limits.QUERY_VALUE_MAX_BYTES, errors)
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            errors.append(FieldError("limit", f"must be a whole number from 1 to {MAX_LIMIT}"))
    cursor = None
    raw_cursor = single_value(multi, "cursor", limits.QUERY_VALUE_MAX_BYTES, errors)
    if raw_cursor:
        try:
            cursor = Cursor.decode(raw_cursor)
        except ValueError as exc:
            errors.append(FieldError("cursor", str(exc)))
    return limit, cursor


def parse_list_query(multi: Mapping[str, Sequence[str]], scope: str | None) -> ListQuery:
    """``GET /v1/jobs``: ``multi`` has every value of each query parameter.

    A parameter that takes one value and is given several different ones is
    refused (400), never answered with the first or the last.
    """
    errors: list[FieldError] = []
    for name in sorted(set(multi) - _LIST_PARAMS):
        errors.append(
            FieldError(
                _shown(name), f"unknown parameter; allowed: {', '.join(sorted(_LIST_PARAMS))}"
            )
        )

    owner = owner_param(multi, scope, errors)

    states = _repeated(multi, "state", limits.QUERY_VALUE_MAX_BYTES, errors)
    for state in states or ():
        if state not in STATES:
            errors.append(
                FieldError("state", f"unknown state {state!r}; one of {', '.join(STATES)}")
            )
    kinds = _repeated(multi, "kind", limits.KIND_MAX_BYTES, errors)
    error_kinds = _repeated(multi, "error_kind", limits.QUERY_VALUE_MAX_BYTES, errors)

    bounds: dict[str, datetime | None] = {}
    for name in ("created_after", "created_before"):
        raw = single_value(multi, name, limits.QUERY_VALUE_MAX_BYTES, errors)
        bounds[name] = None
        if raw is not None:
            try:
                bounds[name] = parse_timestamp(raw)
            except ValueError as exc:
                errors.append(FieldError(name, str(exc)))

    limit, cursor = page_params(multi, errors)

    if errors:
        raise RequestInvalid(errors)
    assert owner is not None
    return ListQuery(
        owner,
        states,
        kinds,
        bounds["created_after"],
        bounds["created_before"],
        limit,
        cursor,
        error_kinds,
    )
