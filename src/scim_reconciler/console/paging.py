"""Page numbers of the console's long lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from scim_reconciler.console.rendering import PageError

MAX_PAGE = 1_000_000


def page_number(value: str | None) -> int:
    """Parse a ``page`` query parameter: 1 when missing, a 400 page when invalid."""
    if value is None or value == "":
        return 1
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise PageError(
            400,
            "Invalid page number",
            f"Page {value!r} is not a valid page number: give a whole number "
            f"from 1 to {MAX_PAGE}.",
        )
    return int(value)


@dataclass(frozen=True)
class Pager:
    """Position of one page in a list of ``total`` items, ``size`` a page."""

    number: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def pages(self) -> int:
        return max((self.total + self.size - 1) // self.size, 1)

    @property
    def first_item(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_item(self) -> int:
        return min(self.offset + self.size, self.total)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    def url_builder(self, path: str, **params: str) -> Callable[[int], str]:
        """Return a function from page number to URL, keeping the other parameters."""
        kept = {key: value for key, value in params.items() if value}

        def url(number: int) -> str:
            query = dict(kept)
            if number > 1:
                query["page"] = str(number)
            return f"{path}?{urlencode(query)}" if query else path

        return url
