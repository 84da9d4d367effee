"""Numbers as the dashboard shows them, and a running job's pace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exportd.ui.present import duration, pace, pace_document, size, when

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("count", "text"),
    [(None, "\u2014"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**30, "5.0 GiB")],
)
def test_size(count: int | None, text: str) -> None:
    assert size(count) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250 ms"),
        (4.26, "4.3 s"),
        (42, "42 s"),
        (185, "3 m 05 s"),
        (7800, "2 h 10 m"),
        (3 * 86400 + 4 * 3600, "3 d 4 h"),
    ],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_when_is_utc_to_the_second() -> None:
    zurich = datetime(2026, 12, 1, 11, 0, 7, tzinfo=UTC) + timedelta(0)
    assert when(zurich) == "2026-12-01 11:00:07Z"
    assert when(None) == "\u2014"


def test_pace_is_the_rate_since_the_start_and_the_rest_at_that_rate() -> None:
    started = NOW - timedelta(seconds=100)
    got = pace(25, 5000, 10 * 2**20, started, NOW)
    assert (got.rows_per_second, got.bytes_per_second) == (50.0, 10 * 2**20 / 100)
    assert got.eta_seconds == 300.0
    doc = pace_document(got)
    assert doc["rate_text"] == "50 rows/s, 102.4 KiB/s"
    assert doc["eta_text"] == "5 m 00 s"


def test_pace_without_a_start_or_a_percent_says_unknown() -> None:
    assert pace(0, 10, 10, NOW - timedelta(seconds=5), NOW).eta_seconds is None
    unknown = pace(50, 10, 10, None, NOW)
    assert unknown.rows_per_second is None
    assert pace_document(unknown)["rate_text"] == "\u2014"
    assert pace(250, None, None, NOW, NOW).percent == 100
