"""A job row as callers see it (API and CLI): JSON-ready, internal columns left out."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from exportd.export.keys import filename_of
from exportd.queue.pauses import Pause, PauseState
from exportd.queue.requeue import Attempt
from exportd.tracing.context import from_document

# Daemon bookkeeping that means nothing to a caller (claims names each claim
# in the guarded writes; a caller counts attempts, and reads the runs).
_INTERNAL = frozenset({"upload_id", "upload_key", "claims"})


def timestamp(value: datetime) -> str:
    """ISO 8601 text of a timestamptz as read from the database, always with its offset.

    asyncpg reads timestamptz in binary, as UTC whatever the session's TimeZone,
    except Postgres's infinity and -infinity, which it reads as the naive
    ``datetime.max`` and ``datetime.min`` (and it writes 0001-01-01T00:00:00Z
    as -infinity): those are UTC too, and say so.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    return value


def job_document(row: Any) -> dict[str, Any]:
    doc = {k: _plain(v) for k, v in dict(row).items() if k not in _INTERNAL}
    if "trace_context" in doc:
        # As the daemon reads it: a valid traceparent (and its tracestate, at most
        # 512 characters), or null; whatever else a direct INSERT stored is not shown.
        doc["trace_context"] = from_document(doc["trace_context"])
    return doc


def download_filename(doc: dict[str, Any]) -> str:
    """The file name a download is saved under: the job's ``filename``, in full, or,
    for a job completed before it was recorded, the key's last segment decoded.

    The key's segment may be cut to fit S3's limits (``keys.filename_of``), so it
    is only the fallback.
    """
    name = doc.get("filename")
    if name:
        return str(name)
    return filename_of(str(doc["object_key"]))


def download_ttl(doc: dict[str, Any], ttl: timedelta, now: datetime) -> timedelta | None:
    """How long a download URL made now may live, or None when there is nothing to download.

    Only a completed export has an object, and only until its retention ends:
    a URL never outlives the object it points to.
    """
    if doc.get("state") != "completed" or not doc.get("object_key"):
        return None
    expires = doc.get("expires_at")
    if expires is None:
        return ttl
    left = datetime.fromisoformat(expires) - now
    if left < timedelta(seconds=1):
        return None
    return min(ttl, left)


Sign = Callable[[str, str, timedelta], Awaitable[str]]


async def with_download(doc: dict[str, Any], sign: Sign, ttl: timedelta) -> dict[str, Any]:
    """Add a fresh presigned URL to a completed job's document.

    ``sign(key, filename, lifetime)`` makes the URL. URLs are made when asked
    for and never stored: they die with the credentials that signed them.
    """
    now = datetime.now(UTC)
    lifetime = download_ttl(doc, ttl, now)
    if lifetime is None:
        return doc
    key = doc["object_key"]
    lifetime = timedelta(seconds=int(lifetime.total_seconds()))
    url = await sign(key, download_filename(doc), lifetime)
    expires = now + lifetime
    return {**doc, "download_url": url, "download_url_expires_at": expires.isoformat()}


def runs_document(attempts: Sequence[Attempt]) -> list[dict[str, Any]]:
    """The ended attempts of a job as callers see them (``runs`` of a job's
    document), oldest first: which attempt, who ran it, when, how it ended
    (``outcome``), the state it left the job in, and its error."""
    return [
        {
            "attempt": a.attempt,
            "worker_id": a.worker_id,
            "started_at": _plain(a.started_at),
            "finished_at": _plain(a.finished_at),
            "outcome": a.outcome,
            "next_state": a.next_state,
            "error_kind": a.error_kind,
            "error": a.error,
        }
        for a in attempts
    ]


def delivery_document(row: dict[str, Any]) -> dict[str, Any]:
    """One webhook delivery as callers see it: ``id`` is the ``webhook-id`` its
    receiver got (``msg_`` and 32 hex digits), ``recent_attempts`` its last
    attempts, oldest first (``queue.outbox.ATTEMPTS_SHOWN`` at most)."""
    pending = row["state"] == "pending"
    return {
        "id": f"msg_{row['id'].hex}",
        "type": row["event_type"],
        "occurred_at": timestamp(row["occurred_at"]),
        "state": row["state"],
        "attempts": row["attempts"],
        "next_attempt_at": timestamp(row["next_attempt_at"]) if pending else None,
        "finished_at": _plain(row["finished_at"]),
        "last_status": row["last_status"],
        "last_error": row["last_error"],
        "recent_attempts": list(row["attempt_log"]),
    }


def with_deliveries(doc: dict[str, Any], deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    """The job's document with its webhook deliveries (rows of
    ``PgJobStore.deliveries``), oldest first, under ``deliveries``."""
    return {**doc, "deliveries": [delivery_document(d) for d in deliveries]}


# --- Paused kinds (exportd.queue.pauses) ---


def pause_fields(pause: Pause | None) -> dict[str, Any]:
    """A pause's time, author and reason; all None for none."""
    return {
        "paused_at": None if pause is None else timestamp(pause.paused_at),
        "paused_by": None if pause is None else pause.paused_by,
        "reason": None if pause is None else pause.reason,
    }


def kind_pause_document(state: PauseState) -> dict[str, Any]:
    """A kind's pause state: ``paused`` (claimed by no daemon), ``paused_all`` (held
    by the pause of every kind), and the pause that holds it (its own first)."""
    return {
        "kind": state.kind,
        "paused": state.paused,
        "paused_all": state.every_kind is not None,
        **pause_fields(state.effective),
    }


def kind_listing_fields(state: PauseState) -> dict[str, Any]:
    """What ``GET /v1/kinds`` shows of a kind's pause: no author, which is an
    operator's name and not an application's business."""
    doc = kind_pause_document(state)
    return {k: doc[k] for k in ("paused", "paused_all", "paused_at", "reason")}
