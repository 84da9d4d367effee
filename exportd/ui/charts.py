"""The overview's chart, drawn on the server as inline SVG: no library, no script,
and it reads the same with JavaScript off.

Exports and failures per minute over the last hour: one bar pair a minute,
completions above the axis and failures below it, so neither hides the
other. Pure: geometry in, geometry out; the template writes the elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 720
HALF = 70  # pixels above (and below) the axis
LEFT = 36  # room for the scale's labels
MINUTES = 60


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # shown on hover, and read by screen readers


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    axis_y: float
    completed: list[Bar]
    failed: list[Bar]
    top_label: str
    bottom_label: str
    total_completed: int
    total_failed: int


def per_minute(counts: Sequence[tuple[int, int, int]]) -> Chart:
    """The chart of ``counts``: (minutes ago, 0 to 59, completed, failed) triples,
    in any order, missing minutes being zero. Bars scale to the busiest minute
    of either series, so the two halves compare."""
    completed = [0] * MINUTES
    failed = [0] * MINUTES
    for ago, done, bad in counts:
        if 0 <= ago < MINUTES:
            completed[MINUTES - 1 - ago] += max(0, done)
            failed[MINUTES - 1 - ago] += max(0, bad)
    peak = max(1, *completed, *failed)
    slot = (WIDTH - LEFT) / MINUTES
    bar_width = max(1.0, slot - 2)
    axis = HALF + 4
    ups: list[Bar] = []
    downs: list[Bar] = []
    for i in range(MINUTES):
        x = round(LEFT + i * slot + 1, 1)
        ago = MINUTES - 1 - i
        label = "this minute" if ago == 0 else f"{ago} min ago"
        if completed[i]:
            h = round(HALF * completed[i] / peak, 1)
            ups.append(Bar(x, round(axis - h, 1), bar_width, h, f"{label}: {completed[i]} done"))
        if failed[i]:
            h = round(HALF * failed[i] / peak, 1)
            downs.append(Bar(x, axis, bar_width, h, f"{label}: {failed[i]} failed"))
    return Chart(
        WIDTH,
        2 * HALF + 8,
        axis,
        ups,
        downs,
        f"{peak}/min",
        f"{peak}/min",
        sum(completed),
        sum(failed),
    )
