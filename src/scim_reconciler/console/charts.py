"""The drift chart: one bar per UTC day, drawn on the server as SVG.

Only the geometry is computed here; the template draws it. Coordinates are in
the SVG's own units (``WIDTH`` by ``HEIGHT``), and the browser scales the whole
chart to the width of the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import log10

from scim_reconciler.services.reports import DriftDay

WIDTH = 960
HEIGHT = 260
LEFT = 44  # room for the y-axis labels
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the x-axis labels
GAP_RATIO = 0.25  # part of each day's slot left empty between bars


@dataclass(frozen=True)
class Bar:
    day: DriftDay
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class DayLabel:
    text: str
    x: float


@dataclass(frozen=True)
class DriftChart:
    days: list[DriftDay]
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[DayLabel]
    total: int
    runs: int
    peak: DriftDay | None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_bottom: float = HEIGHT - BOTTOM

    @property
    def summary(self) -> str:
        """A sentence that sums up the chart, for screen readers."""
        if not self.days:
            return "No days to show."
        span = f"{self.days[0].day:%d %b %Y} to {self.days[-1].day:%d %b %Y}"
        if self.peak is None:
            return f"No drift from {span}: every run found the dashboard in line."
        return (
            f"Drift per day from {span}: {self.total} changes applied by "
            f"{self.runs} runs, highest on {self.peak.day:%d %b} with "
            f"{self.peak.drift}."
        )


def nice_ceiling(value: int) -> int:
    """Round up to 1, 2 or 5 times a power of ten, so that ticks read well."""
    if value <= 1:
        return 1
    magnitude: int = 10 ** int(log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def drift_chart(days: list[DriftDay]) -> DriftChart:
    plot_height = HEIGHT - TOP - BOTTOM
    plot_width = WIDTH - LEFT - RIGHT

    top_value = nice_ceiling(max((day.drift for day in days), default=0))
    slot = plot_width / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        height = plot_height * day.drift / top_value
        # A day with drift gets at least a visible sliver.
        if day.drift and height < 2:
            height = 2
        bars.append(
            Bar(
                day=day,
                x=round(LEFT + index * slot + slot * GAP_RATIO / 2, 2),
                y=round(TOP + plot_height - height, 2),
                width=round(slot * (1 - GAP_RATIO), 2),
                height=round(height, 2),
            )
        )

    # The ceiling is 1, 2, or a multiple of 5, so each step is a whole number.
    steps = 5 if top_value % 5 == 0 else top_value
    ticks = [
        Tick(
            value=top_value * n // steps,
            y=round(TOP + plot_height * (1 - n / steps), 2),
        )
        for n in range(steps + 1)
    ]

    # Label every seventh day from the last, so that today always has one.
    labels = [
        DayLabel(f"{day.day:%d %b}", round(LEFT + index * slot + slot / 2, 2))
        for index, day in enumerate(days)
        if (len(days) - 1 - index) % 7 == 0
    ]

    with_drift = [day for day in days if day.drift]
    peak = max(with_drift, key=lambda day: (day.drift, day.day), default=None)
    return DriftChart(
        days=days,
        bars=bars,
        ticks=ticks,
        labels=labels,
        total=sum(day.drift for day in days),
        runs=sum(day.runs for day in days),
        peak=peak,
    )
