"""The drift chart: one bar per UTC day, drawn on the server as SVG.

Only the geometry is computed here; the template draws it. Coordinates are in
the SVG's own units (a layout's ``width`` by ``height``), and the browser
scales the whole chart to the width of the page. Text scales with it, so each
layout is drawn for the width it is shown at: ``WIDE`` for desktop screens and
``NARROW`` for phones, where the wide chart's axis text would shrink to a few
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import log10

from scim_reconciler.console.text import counted
from scim_reconciler.services.reports import DriftDay

GAP_RATIO = 0.25  # part of each day's slot left empty between bars


@dataclass(frozen=True)
class ChartLayout:
    """Size of the chart and its margins, in SVG units."""

    width: int
    height: int
    left: int  # room for the y-axis labels
    right: int  # room for half of the last x-axis label
    top: int
    bottom: int  # room for the x-axis labels


WIDE = ChartLayout(width=960, height=260, left=44, right=24, top=12, bottom=28)
# Shown about 330 to 480 pixels wide, so its 14-unit axis text stays 13 to 19
# pixels high (see console.css).
NARROW = ChartLayout(width=360, height=240, left=40, right=22, top=12, bottom=28)


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
    layout: ChartLayout = WIDE

    @property
    def width(self) -> int:
        return self.layout.width

    @property
    def height(self) -> int:
        return self.layout.height

    @property
    def left(self) -> int:
        return self.layout.left

    @property
    def plot_right(self) -> int:
        return self.layout.width - self.layout.right

    @property
    def plot_bottom(self) -> int:
        return self.layout.height - self.layout.bottom

    @property
    def summary(self) -> str:
        """A sentence that sums up the chart, for screen readers."""
        if not self.days:
            return "No days to show."
        span = f"{self.days[0].day:%d %b %Y} to {self.days[-1].day:%d %b %Y}"
        if self.peak is None:
            return f"No drift from {span}: every run found the dashboard in line."
        return (
            f"Drift per day from {span}: {self.total} in all, over "
            f"{counted(self.runs, 'apply run')}, highest on {self.peak.day:%d %b} "
            f"with {self.peak.drift}."
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


def drift_chart(days: list[DriftDay], layout: ChartLayout = WIDE) -> DriftChart:
    top, left = layout.top, layout.left
    plot_height = layout.height - top - layout.bottom
    plot_width = layout.width - left - layout.right

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
                x=round(left + index * slot + slot * GAP_RATIO / 2, 2),
                y=round(top + plot_height - height, 2),
                width=round(slot * (1 - GAP_RATIO), 2),
                height=round(height, 2),
            )
        )

    # The ceiling is 1, 2, or a multiple of 5, so each step is a whole number.
    steps = 5 if top_value % 5 == 0 else top_value
    ticks = [
        Tick(
            value=top_value * n // steps,
            y=round(top + plot_height * (1 - n / steps), 2),
        )
        for n in range(steps + 1)
    ]

    # Label every seventh day from the last, so that today always has one.
    labels = [
        DayLabel(f"{day.day:%d %b}", round(left + index * slot + slot / 2, 2))
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
        layout=layout,
    )
