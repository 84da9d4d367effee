"""How the dashboard shows numbers: sizes, durations, ages, and a running job's
rate and time left. Pure: the pages and the live endpoint share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(count: int | None) -> str:
    """Bytes in binary units: 0 B, 512 B, 1.5 MiB; None: an em dash."""
    if count is None:
        return "\u2014"
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover - the loop always returns


def duration(seconds: float | None) -> str:
    """A span at a glance: 850 ms, 42 s, 3 m 05 s, 2 h 10 m, 3 d 4 h; None: an em dash."""
    if seconds is None:
        return "\u2014"
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} m"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def when(value: datetime | None) -> str:
    """A timestamp in UTC to the second (2026-12-01 10:26:07Z); None: an em dash."""
    if value is None:
        return "\u2014"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass(frozen=True)
class Pace:
    """A running job's progress as shown: percent (0 to 100), rows, bytes, the rate
    since it started (rows/s, bytes/s) and the seconds left (None: unknown)."""

    percent: int
    rows: int
    bytes: int
    rows_per_second: float | None
    bytes_per_second: float | None
    eta_seconds: float | None


def pace(
    percent: int | None,
    rows: int | None,
    written: int | None,
    started_at: datetime | None,
    now: datetime,
) -> Pace:
    """The rate since ``started_at`` and the time left by the percentage: at the
    same rate, ``elapsed * (100 - p) / p``. The percentage is the planner's
    estimate (``export.progress``): the time left is as good as it, and
    unknown until one percent is done."""
    p = max(0, min(100, percent or 0))
    rows, written = rows or 0, written or 0
    elapsed = (now - started_at).total_seconds() if started_at is not None else 0.0
    if elapsed <= 0:
        return Pace(p, rows, written, None, None, None)
    eta = elapsed * (100 - p) / p if p > 0 else None
    return Pace(p, rows, written, rows / elapsed, written / elapsed, eta)


def pace_document(value: Pace) -> dict[str, object]:
    """A Pace as the live endpoint sends it: numbers, and the same text the page shows."""
    return {
        "percent": value.percent,
        "rows": value.rows,
        "bytes": value.bytes,
        "rows_text": f"{value.rows:,}",
        "bytes_text": size(value.bytes),
        "rate_text": rate(value),
        "eta_text": duration(value.eta_seconds),
    }


def rate(value: Pace) -> str:
    """Rows and bytes per second: 1,204 rows/s, 3.2 MiB/s; unknown: an em dash."""
    if value.rows_per_second is None or value.bytes_per_second is None:
        return "\u2014"
    return f"{value.rows_per_second:,.0f} rows/s, {size(int(value.bytes_per_second))}/s"
