"""The per-minute chart's geometry."""

from __future__ import annotations

from exportd.ui.charts import HALF, MINUTES, per_minute


def test_bars_scale_to_the_busiest_minute_of_either_series() -> None:
    chart = per_minute([(0, 4, 0), (59, 2, 8), (60, 100, 100), (-1, 100, 100)])
    assert (chart.total_completed, chart.total_failed) == (6, 8)
    assert chart.top_label == "8/min"
    newest, oldest = (
        max(chart.completed, key=lambda b: b.x),
        min(chart.completed, key=lambda b: b.x),
    )
    assert newest.title == "this minute: 4 done"
    assert newest.height == HALF * 4 / 8
    assert oldest.title == "59 min ago: 2 done"
    [failed] = chart.failed
    assert failed.height == HALF
    assert failed.y == chart.axis_y
    assert newest.y + newest.height == chart.axis_y


def test_an_idle_hour_draws_no_bar() -> None:
    chart = per_minute([(m, 0, 0) for m in range(MINUTES)])
    assert chart.completed == []
    assert chart.failed == []
    assert chart.top_label == "1/min"
