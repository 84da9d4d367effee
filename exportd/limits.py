"""Bounds on what callers write, in bytes, and on what is built from it.

One place for each number: the table's named CHECK constraints (migration
``0004_bounds``), the API's request checks and the builders of keys and
payloads all read them from here, and a test holds the migration to them.
Bytes, not characters: every limit downstream (``pg_notify``'s 8000-byte
payload, S3's 1024-byte key and 255-byte path segment, an HTTP header) counts
bytes of UTF-8, and one character may take four.

JSON text a caller wrote is decoded here too, within those bounds: Postgres
accepts a jsonb document nested far deeper than Python's ``json`` module can
decode (1,200 levels raise ``RecursionError``), so a document is measured
first, by a loop that recurses into nothing.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

# Caller-written columns of exportd.jobs (and the same fields of POST /v1/jobs
# and the X-Exportd-Owner header).
OWNER_MAX_BYTES = 256
KIND_MAX_BYTES = 128
DEDUPE_KEY_MAX_BYTES = 256
# params as JSON text (jsonb's own rendering, which is what the claim reads).
PARAMS_MAX_BYTES = 64 * 1024
# Nesting of any JSON a caller sends (a request body, params): typed params
# need two levels (an object of lists); deeper documents are refused before
# they reach a recursive decoder. Depth counts containers: {} is 1, {"a": []} 2.
JSON_MAX_DEPTH = 32

# The HTTP API (what the table does not hold, but a request carries).
# A POST body: one job's fields around a params document, whose escapes
# (\u00e9 for two bytes of UTF-8) may take up to three times its stored size.
REQUEST_BODY_MAX_BYTES = 4 * PARAMS_MAX_BYTES
# A body's nesting: the request's own object around a params document.
REQUEST_JSON_MAX_DEPTH = JSON_MAX_DEPTH + 1
# Any query parameter value not bounded above (a timestamp, a cursor, a limit,
# a state), and the values one repeatable parameter (state=, kind=) may take.
QUERY_VALUE_MAX_BYTES = 256
QUERY_VALUES_MAX = 64
# A caller's X-Request-Id, echoed and logged only when it is this short and sane.
REQUEST_ID_MAX_BYTES = 128
# Timestamps a caller may send (run_after, created_after, created_before), as
# UTC: before 1970 means "now" to the queue anyway, and both ends keep clear of
# what the driver turns into -infinity/infinity (0001-01-01, 9999-12-31T23:59:59.999999)
# and of what Python's datetime cannot hold once an offset is applied.
TIMESTAMP_MIN_ISO = "1970-01-01T00:00:00+00:00"
TIMESTAMP_MAX_ISO = "9999-01-01T00:00:00+00:00"

# run_after as the table holds it (jobs_run_after_range, migration
# 0005_run_after_range): the instants every reader of a row can decode.
# Postgres stores 4713 BC to 294276 AD; asyncpg decodes into Python's
# datetime, years 1 to 9999 (and infinity/-infinity as its two ends), and
# raises on anything else, so one row past them would fail every read of it
# and every page of its owner's jobs. From the start (included) to the end
# (excluded), at UTC, or infinity/-infinity.
RUN_AFTER_MIN_ISO = "0001-01-01 00:00:00+00"
RUN_AFTER_END_ISO = "10000-01-01 00:00:00+00"

# A paused kind (exportd.paused_kinds, migration 0008_pauses): who paused it
# (the API, or the OS user and host of the command line) and the operator's
# reason, shown by GET /v1/kinds and logged.
PAUSED_BY_MAX_BYTES = 256
PAUSE_REASON_MAX_BYTES = 1024

# A daemon's row in exportd.workers (migration 0013_workers): its worker id
# (host, pid and a random suffix; a host name is at most 255 bytes), the host
# it runs on and exportd's version, as GET /v1/workers and the dashboard show.
WORKER_ID_MAX_BYTES = 300
WORKER_HOST_MAX_BYTES = 255
WORKER_VERSION_MAX_BYTES = 64

# What the daemon writes from caller input.
# pg_notify refuses payloads of 8000 bytes or more.
NOTIFY_MAX_BYTES = 8000
# S3: a key is at most 1024 bytes; many stores (those backed by a file
# system) refuse a path segment over 255 bytes, or one that is "." or "..".
S3_KEY_MAX_BYTES = 1024
S3_SEGMENT_MAX_BYTES = 255
# A job's error message, as stored and logged: long enough to act on, short
# enough that no caller string can make a row or a log line unbounded.
ERROR_MAX_CHARS = 2000

# One row of an export (a CopyData message, or a record a handler yields), in
# bytes of the written file: EXPORTD_MAX_ROW_BYTES's default and its range.
# Postgres builds a row's text in one allocation of at most 1 GiB - 1.
MAX_ROW_BYTES_DEFAULT = 64 * 1024 * 1024
MAX_ROW_BYTES_FLOOR = 64 * 1024
MAX_ROW_BYTES_CEILING = 1024 * 1024 * 1024 - 1
# How far past the limit a row may have arrived before the connection's watch
# refuses it: more than one socket read (asyncio reads 256 KiB at most) and the
# protocol messages that can follow the last row, so that a row within the
# limit is never refused while it arrives. Rows between the limit and this are
# refused, exactly, once asyncpg hands them over.
ROW_WATCH_SLACK_BYTES = 1024 * 1024
# The key is {prefix}/{owner}/{job_id}/{filename}: a job id takes 36 bytes,
# the separators 3, and the owner and file segments at most a segment each,
# so a prefix within this many bytes leaves room for any owner and file name.
S3_JOB_ID_BYTES = 36
S3_PREFIX_MAX_BYTES = S3_KEY_MAX_BYTES - 2 * S3_SEGMENT_MAX_BYTES - S3_JOB_ID_BYTES - 3

# A JSON string (its escapes included), and the brackets that nest.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonBoundsError(ValueError):
    """A document over a bound, or not JSON; the message says which and by how much."""


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (0 for a scalar).

    Read without decoding and without recursion, so that it runs before a
    decoder that recurses once per level (json and orjson both do: 1,000
    levels in 2 KB is a RecursionError). Brackets inside strings do not count.
    The text is not validated: text that is not JSON may be over-counted, and
    the decoder says what is wrong with it.
    """
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        if bracket.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads_bounded(
    text: str,
    what: str,
    *,
    max_depth: int = JSON_MAX_DEPTH,
    max_bytes: int = PARAMS_MAX_BYTES,
) -> Any:
    """``json.loads(text)`` once ``text`` is within ``max_bytes`` (UTF-8) and ``max_depth``.

    ``what`` names the document in the error ("params"). Raises
    ``JsonBoundsError`` with a message a person can act on; never
    ``RecursionError``. The defaults are those of caller params
    (exportd/limits.py).
    """
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise JsonBoundsError(
            f"{what} are {size:,} bytes as JSON text, over the {max_bytes:,} allowed; "
            "send less (a narrower filter, fewer values) and enqueue again"
        )
    depth = json_depth(text)
    if depth > max_depth:
        raise JsonBoundsError(
            f"{what} nest {depth:,} levels deep, over the {max_depth} allowed; "
            "send a flatter document and enqueue again"
        )
    try:
        return json.loads(text)
    except ValueError as exc:
        raise JsonBoundsError(f"{what} are not valid JSON: {exc}") from exc


# --- Caller text ---------------------------------------------------------------------------

# Control characters: never in an owner, a kind or a dedupe key (they end up in
# keys, headers and log lines).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text_problem(text: str, max_bytes: int | None = None) -> str | None:
    """Why ``text`` cannot be taken, or None.

    A NUL character or a lone surrogate (JSON allows both) makes the driver or
    the server refuse the whole statement: a 400 naming the field, not a 500.
    ``max_bytes`` bounds its UTF-8 encoding (``exportd.limits``): bytes, not
    characters, because every limit downstream counts bytes.
    """
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
    """Why ``text`` cannot be an owner, kind or dedupe key, or None: it must be
    non-empty, storable, free of control characters and at most ``max_bytes``."""
    if not text:
        return "must not be empty"
    problem = text_problem(text, max_bytes)
    if problem is None and _CONTROL.search(text):
        problem = "must not contain control characters"
    return problem


# --- Schedules (migration 0007_schedules) --------------------------------------------------

# A cron expression: five fields or an @name are a few dozen bytes; the bound
# only keeps a row, a log line and an error message small.
SCHEDULE_CRON_MAX_BYTES = 256
# An IANA time zone name: the longest in the database is about 30 bytes.
SCHEDULE_TIMEZONE_MAX_BYTES = 64
# A schedule's job options, as JSON text: those of its jobs (OPTIONS_MAX_BYTES).
SCHEDULE_OPTIONS_MAX_BYTES = 16 * 1024

# --- Job options (migration 0010_job_options) ----------------------------------------------

# A job's options document as JSON text (jsonb's own rendering): a few keys,
# short values and at most a list of column names per dataset.
OPTIONS_MAX_BYTES = 16 * 1024
# An IANA time zone name (the longest in the database is about 30 bytes).
OPTIONS_TIMEZONE_MAX_BYTES = 64
# Output columns named by one list: Postgres's own bound on a result's columns.
OPTIONS_COLUMNS_MAX = 1664
# A column name: a Postgres identifier is at most 63 bytes (NAMEDATALEN - 1).
OPTIONS_COLUMN_MAX_BYTES = 63
# The text a CSV writes for NULL.
OPTIONS_NULL_MAX_BYTES = 64
# Rows per file (or sheet); past a billion a part is no longer "smaller".
OPTIONS_SPLIT_ROWS_MAX = 1_000_000_000
# A column's header text ([kinds.NAME.labels]). COPY writes a CSV header from
# the projection's column aliases, and Postgres cuts an identifier past 63
# bytes (NAMEDATALEN - 1) with only a NOTICE: a longer label would come out cut.
LABEL_MAX_BYTES = 63

# --- Trace context (migration 0012_trace_context) ------------------------------------------

# A job's trace_context document as JSON text: a traceparent (55 characters)
# and a tracestate; room to spare, and still small beside a row.
TRACE_CONTEXT_MAX_BYTES = 1024
# A tracestate header: W3C Trace Context asks every platform to carry at
# least 512 characters, and lets it cut a longer one by whole list members.
TRACESTATE_MAX_CHARS = 512


def jsonb_text_bytes(document: Any) -> int:
    """The size in bytes of ``document``'s text as Postgres writes it as jsonb, which
    is what the tables' byte CHECKs measure (``octet_length(params::text)``). Python's
    JSON text has the same separators, but jsonb keeps each number as numeric and
    writes it in full: Python's ``1e+300`` (6 bytes) is 301 digits there, ``1.5e-07``
    is ``0.00000015``. Counting Python's text alone let a document under the bound
    here fail the table's CHECK. Walked without recursion.

    Raises ValueError or TypeError for what JSON cannot hold (a set, a cycle); a lone
    surrogate is counted as its three bytes (callers report such text on its own)."""
    size = len(json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    pending: list[Any] = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, float):
            shown = repr(value)
            if "e" in shown:
                size += max(0, len(format(Decimal(shown), "f")) - len(shown))
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
    return size


def cut_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` bytes of UTF-8, never inside a
    character (a string within the bound is returned as it is)."""
    return text.encode()[:max_bytes].decode(errors="ignore")
