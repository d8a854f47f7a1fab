"""Paging and sorting of list responses (RFC 7644 §3.4.2.3 and §3.4.2.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim2_models import InvalidValueException
from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from scim_reconciler.db.models import Group, User

# A larger startIndex is clamped to this value. Every page from here on is past
# the end, and the SQL OFFSET stays within the 64-bit integers that SQLite and
# PostgreSQL accept.
MAX_START_INDEX = 2**31


@dataclass(frozen=True)
class Page:
    start_index: int
    count: int


def _integer(name: str, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidValueException(
            detail=f"{name} must be an integer, got {raw!r}"
        ) from None


def parse_page(start_index: str | None, count: str | None, max_results: int) -> Page:
    """Read startIndex and count as RFC 7644 says: below 1 is 1, negative is 0."""
    start = _integer("startIndex", start_index)
    size = _integer("count", count)
    start = 1 if start is None or start < 1 else min(start, MAX_START_INDEX)
    size = max_results if size is None else max(0, min(size, max_results))
    return Page(start, size)


_SORTABLE: dict[str, dict[str, InstrumentedAttribute[Any]]] = {
    "User": {
        "id": User.id,
        "username": User.user_name_key,
        "externalid": User.external_id,
        "displayname": User.display_name_key,
        "active": User.active,
        "meta.created": User.created_at,
        "meta.lastmodified": User.last_modified,
        "emails": User.email,
        "emails.value": User.email,
        "name.givenname": User.given_name,
        "name.familyname": User.family_name,
    },
    "Group": {
        "id": Group.id,
        "displayname": Group.display_name_key,
        "externalid": Group.external_id,
        "meta.created": Group.created_at,
        "meta.lastmodified": Group.last_modified,
    },
}


def sort_column(
    sort_by: str | None, resource_type: str
) -> InstrumentedAttribute[Any] | None:
    if not sort_by:
        return None
    name = sort_by.strip().lower()
    core = f"urn:ietf:params:scim:schemas:core:2.0:{resource_type.lower()}:"
    name = name.removeprefix(core)
    column = _SORTABLE[resource_type].get(name)
    if column is None:
        choices = ", ".join(sorted(_SORTABLE[resource_type]))
        raise InvalidValueException(
            detail=f"sortBy {sort_by!r} is not supported for {resource_type}; "
            f"sortable attributes are {choices}"
        )
    return column


def sort_terms(
    column: InstrumentedAttribute[Any] | None, descending: bool
) -> list[ColumnElement[Any]]:
    """Return the ORDER BY terms for sortBy and sortOrder.

    RFC 7644 §3.4.2.3 puts resources without a value last when ascending and
    first when descending. PostgreSQL does so by default, but SQLite sorts NULL
    as the smallest value, so the NULLS placement is explicit.
    """
    if column is None:
        return []
    if descending:
        return [column.desc().nulls_first()]
    return [column.asc().nulls_last()]


def parse_sort_order(raw: str | None) -> bool:
    """Return True for descending; RFC 7644 allows "ascending" and "descending"."""
    if raw is None or raw == "" or raw.lower() == "ascending":
        return False
    if raw.lower() == "descending":
        return True
    raise InvalidValueException(
        detail=f"sortOrder must be ascending or descending, got {raw!r}"
    )
