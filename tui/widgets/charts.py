"""How every plotext chart tells its series apart and labels its axis (the one rule for both).

- Each series has a marker of its own (a solid bar against a shaded one, dots against crosses),
  so that with NO_COLOR, or on a terminal that shows colours as greys, the chart and its legend
  still say which is which. The colour is a second cue, never the only one.
- The value axis has round ticks (1, 2 or 5 times a power of ten, from 0) labelled with thousands
  separators (`150,000`, `40%`), never plotext's own (`17941.8`, `54.0, 45.0, 27.0`).
Amounts are drawn as floats (drawing only); every figure printed beside a chart is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Series:
    label: str
    marker: str
    color: str


FORECAST = Series("forecast", "█", "cyan")
ACTUAL = Series("actual", "░", "green")
TV = Series("TV", "•", "cyan")
EV = Series("EV", "x", "green")
RATIO = Series("EV/TV", "•", "magenta")
TV_LAST_YEAR = Series("TV last yr", "+", "cyan")
EV_LAST_YEAR = Series("EV last yr", "o", "green")


def nice_step(high: float, count: int = 5) -> int:
    """The round step (1, 2 or 5 times a power of ten, at least 1) that covers 0..high in about
    `count` ticks."""
    if high <= 0:
        return 1
    rough = Decimal(str(high)) / count
    power = Decimal(10) ** max(0, rough.adjusted())
    for factor in (1, 2, 5, 10):
        if power * factor >= rough:
            return int(power * factor)
    return int(power * 10)  # pragma: no cover - the loop ends at 10


def nice_ticks(high: float, count: int = 5) -> list[int]:
    """Round ticks from 0 to the first one at or above `high` (0 and 1 when there is nothing)."""
    step = nice_step(high, count)
    ticks = [0]
    while ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks if len(ticks) > 1 else [0, step]


def tick_label(value: int, unit: str = "") -> str:
    """A tick as it reads: thousands separated, with its unit (`150,000`, `40%`)."""
    return f"{value:,}{unit}"


def value_axis(plt: Any, high: float, *, unit: str = "", count: int = 5, height: int = 0) -> list[int]:
    """Put round, labelled ticks on a chart's value axis from 0 to just above `high`. `height`: the
    chart widget's height in lines, if known; a short chart gets fewer ticks (one every other line
    at most), since plotext would drop some of them and leave uneven steps."""
    if height:
        rows = max(1, height - 4)  # the title, the frame and the month labels
        count = max(2, min(count, (rows + 1) // 2))
    ticks = nice_ticks(high, count)
    plt.ylim(0, ticks[-1])
    plt.yticks(ticks, [tick_label(t, unit) for t in ticks])
    return ticks


def line(plt: Any, xs: list[int], ys: list[float], series: Series) -> None:
    """One series as a line of its own marker."""
    plt.plot(xs, ys, label=series.label, marker=series.marker, color=series.color)


def points(plt: Any, xs: list[int], ys: list[float], series: Series) -> None:
    """One series as points of its own marker (a comparison drawn over the lines)."""
    plt.scatter(xs, ys, label=series.label, marker=series.marker, color=series.color)


def bars(plt: Any, xs: list[int], columns: list[list[float]], series: list[Series]) -> None:
    """Bars side by side, one pattern per series."""
    plt.multiple_bar(
        xs,
        columns,
        labels=[s.label for s in series],
        marker=[s.marker for s in series],
        color=[s.color for s in series],
    )


__all__ = [
    "ACTUAL",
    "EV",
    "FORECAST",
    "RATIO",
    "TV",
    "Series",
    "bars",
    "line",
    "nice_step",
    "nice_ticks",
    "tick_label",
    "value_axis",
]
