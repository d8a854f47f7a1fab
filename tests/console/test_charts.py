"""The drift chart's geometry: bars, ticks and the summary for screen readers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from scim_reconciler.console.charts import (
    NARROW,
    WIDE,
    ChartLayout,
    drift_chart,
    nice_ceiling,
)
from scim_reconciler.services.reports import DriftDay

TODAY = date(2026, 3, 31)


def days_with(drift: dict[int, int], count: int = 30) -> list[DriftDay]:
    """Return ``count`` days ending today, with drift by days ago."""
    return [
        DriftDay(
            TODAY - timedelta(days=ago), drift.get(ago, 0), 1 if ago in drift else 0
        )
        for ago in range(count - 1, -1, -1)
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (12, 20), (45, 50), (51, 100)],
)
def test_nice_ceiling_rounds_up(value: int, expected: int) -> None:
    assert nice_ceiling(value) == expected


def test_chart_bar_heights_follow_drift() -> None:
    chart = drift_chart(days_with({0: 12, 5: 6}))
    tallest = chart.bars[-1]
    half = chart.bars[-6]
    assert tallest.day.drift == 12
    assert half.height == pytest.approx(tallest.height / 2)
    assert chart.bars[0].height == 0
    assert tallest.y + tallest.height == pytest.approx(chart.plot_bottom)


def test_chart_ticks_are_whole_steps() -> None:
    chart = drift_chart(days_with({0: 12}))
    assert [tick.value for tick in chart.ticks] == [0, 4, 8, 12, 16, 20]
    assert chart.ticks[0].y == pytest.approx(chart.plot_bottom)
    assert all(0 <= tick.y <= WIDE.height for tick in chart.ticks)


def test_chart_labels_end_today() -> None:
    chart = drift_chart(days_with({}))
    assert chart.labels[-1].text == "31 Mar"
    assert len(chart.labels) == 5


def test_chart_summary_names_peak() -> None:
    chart = drift_chart(days_with({0: 3, 2: 7}))
    assert chart.total == 10
    assert chart.runs == 2
    assert chart.summary == (
        "Drift per day from 02 Mar 2026 to 31 Mar 2026: 10 in all, over "
        "2 apply runs, highest on 29 Mar with 7."
    )


def test_chart_summary_without_drift() -> None:
    chart = drift_chart(days_with({}))
    assert chart.peak is None
    assert "No drift from 02 Mar 2026 to 31 Mar 2026" in chart.summary
    assert chart.bars[-1].height == 0


def test_small_drift_stays_visible() -> None:
    chart = drift_chart(days_with({0: 1, 1: 1000}))
    assert chart.bars[-1].height >= 2


def test_chart_summary_one_run_is_singular() -> None:
    chart = drift_chart(days_with({4: 1}))
    assert "over 1 apply run," in chart.summary


@pytest.mark.parametrize("layout", [WIDE, NARROW], ids=["wide", "narrow"])
def test_chart_fits_its_layout(layout: ChartLayout) -> None:
    """Every bar and day label stays inside the layout's width."""
    chart = drift_chart(days_with({0: 12, 29: 3}), layout)
    assert chart.width == layout.width
    assert len(chart.bars) == 30
    assert chart.bars[0].x >= layout.left
    last = chart.bars[-1]
    assert last.x + last.width <= chart.plot_right
    # A label such as "31 Mar" is centred on its x and at most about 44 units
    # wide in 14-unit text (13 units in the wide chart).
    assert chart.labels[-1].x + 22 <= layout.width
    assert chart.labels[0].x - 22 >= 0
    assert chart.ticks[0].y == pytest.approx(chart.plot_bottom)
