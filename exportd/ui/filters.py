"""The jobs page's filters, as its form sends them: read and checked without I/O.

A form sends every field, empty ones included: an empty value is no filter.
Times come from ``datetime-local`` inputs, without a zone: they are UTC, as
every time the dashboard shows. Pagination is the API's keyset cursor
(``api.query_params.Cursor``), so a page never skips or repeats a job while
new ones arrive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from urllib.parse import urlencode

from exportd import limits
from exportd.api.query_params import Cursor, page_params, single_value
from exportd.api.requests import FieldError, parse_timestamp
from exportd.errors import ErrorKind
from exportd.queue.job import STATES

ERROR_KINDS: tuple[str, ...] = tuple(k.value for k in ErrorKind)
_PARAMS = ("state", "kind", "owner", "error_kind", "since", "until", "limit", "cursor")


@dataclass(frozen=True)
class JobFilter:
    """What the jobs page lists: each filter None when not given; ``since`` and
    ``until`` bound ``created_at`` (inclusive, exclusive)."""

    state: str | None = None
    kind: str | None = None
    owner: str | None = None
    error_kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: Cursor | None = None

    def query(self, **changes: object) -> str:
        """This filter as a query string (``?state=...``), with ``changes`` applied:
        the links of the next page and of the filters' shortcuts."""
        target = replace(self, **changes)  # type: ignore[arg-type]
        pairs = [
            ("state", target.state),
            ("kind", target.kind),
            ("owner", target.owner),
            ("error_kind", target.error_kind),
            ("since", _local(target.since)),
            ("until", _local(target.until)),
            ("limit", None if target.limit == 50 else str(target.limit)),
            ("cursor", target.cursor.encode() if target.cursor else None),
        ]
        return "?" + urlencode([(k, v) for k, v in pairs if v])

    def form_value(self, name: str) -> str:
        """A field's value as its input shows it (empty when not given)."""
        value = getattr(self, name)
        if isinstance(value, datetime):
            return _local(value) or ""
        return "" if value is None else str(value)


def _local(value: datetime | None) -> str | None:
    # What a datetime-local input holds: no zone, to the second; UTC by convention.
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S")


def _time(raw: str | None, name: str, errors: list[FieldError]) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        # The API's bounds: a time Postgres and the driver both hold as given.
        return parse_timestamp(value.isoformat())
    except ValueError:
        errors.append(FieldError(name, "must be a date and time in UTC, as 2026-12-01T10:26"))
        return None


def parse_filter(
    multi: Mapping[str, Sequence[str]], scope: str | None
) -> tuple[JobFilter, list[FieldError]]:
    """The filter a query string asks for, and its problems (each shown on the page
    above an unfiltered list: a bad filter never lists more than asked silently).
    ``scope``: the session's owner, which no ``owner`` value can widen."""
    errors: list[FieldError] = []
    for name in sorted(set(multi) - set(_PARAMS)):
        errors.append(FieldError(name[:64], "is not a filter of this page"))
    state = single_value(multi, "state", limits.QUERY_VALUE_MAX_BYTES, errors) or None
    if state is not None and state not in STATES:
        errors.append(FieldError("state", f"must be one of {', '.join(STATES)}"))
        state = None
    kind = single_value(multi, "kind", limits.KIND_MAX_BYTES, errors) or None
    owner = single_value(multi, "owner", limits.OWNER_MAX_BYTES, errors) or None
    if scope is not None:
        if owner is not None and owner != scope:
            errors.append(FieldError("owner", "this session sees one owner's jobs only"))
        owner = scope
    error_kind = single_value(multi, "error_kind", limits.QUERY_VALUE_MAX_BYTES, errors) or None
    if error_kind is not None and error_kind not in ERROR_KINDS:
        errors.append(FieldError("error_kind", "is not an error kind of exportd"))
        error_kind = None
    since = _time(single_value(multi, "since", 64, errors), "since", errors)
    until = _time(single_value(multi, "until", 64, errors), "until", errors)
    limit, cursor = page_params(multi, errors)
    if errors:
        # An unreadable cursor or limit starts over rather than guessing.
        limit, cursor = 50, None
    return JobFilter(state, kind, owner, error_kind, since, until, limit, cursor), errors
