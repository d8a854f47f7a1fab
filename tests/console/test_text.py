"""Counts in page text: the singular for exactly one, the plural otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from scim_reconciler.console.paging import Pager
from scim_reconciler.console.rendering import templates
from scim_reconciler.console.text import counted


@pytest.mark.parametrize(
    ("number", "expected"),
    [(0, "0 runs"), (1, "1 run"), (2, "2 runs"), (21, "21 runs")],
)
def test_counted_singular_only_for_one(number: int, expected: str) -> None:
    assert counted(number, "run") == expected


def test_counted_takes_irregular_plural() -> None:
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(3, "entry", "entries") == "3 entries"


def pagination(pager: Pager, noun: str) -> str:
    """Render the pagination macro of ``_macros.html`` on its own."""
    macros: Any = templates.get_template("_macros.html").module
    return str(macros.pagination(pager, lambda number: f"?page={number}", noun))


@pytest.mark.parametrize("noun", ["organization", "user", "run", "event", "change"])
def test_pagination_count_of_one_is_singular(noun: str) -> None:
    html = pagination(Pager(number=1, size=20, total=1), noun)
    assert f">1 {noun}</p>" in html
    assert f"1 {noun}s" not in html


@pytest.mark.parametrize("noun", ["organization", "user", "run", "event", "change"])
def test_pagination_count_of_two_is_plural(noun: str) -> None:
    html = pagination(Pager(number=1, size=20, total=2), noun)
    assert f">2 {noun}s</p>" in html


def test_pagination_pages_use_plural() -> None:
    html = pagination(Pager(number=2, size=20, total=41), "user")
    assert 'aria-label="Pages of users"' in html
    assert "21\N{EN DASH}40 of 41 users · page 2 of 3" in html
