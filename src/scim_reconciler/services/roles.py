"""Effective roles: the merge of every grant a user receives through mapped groups.

Several grants of one role merge: a full grant absorbs limited ones, and the
object sets of limited grants unite.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Grant(enum.StrEnum):
    """How much of a role a mapping gives: all of it, or only some objects."""

    full = "full"
    limited = "limited"


@dataclass(frozen=True)
class RoleGrant:
    """One mapping's contribution: a role, full or limited to some objects."""

    role_slug: str
    grant: Grant
    object_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EffectiveRole:
    role_slug: str
    name: str
    grant: Grant
    object_ids: tuple[str, ...]


def merge_grants(
    grants: Iterable[RoleGrant], role_names: dict[str, str]
) -> list[EffectiveRole]:
    """Merge grants per role, sorted by slug for a stable output."""
    full: set[str] = set()
    limited: dict[str, set[str]] = {}
    for grant in grants:
        if grant.grant is Grant.full:
            full.add(grant.role_slug)
        else:
            limited.setdefault(grant.role_slug, set()).update(grant.object_ids)
    merged = []
    for slug in sorted(full | set(limited)):
        name = role_names.get(slug, slug)
        if slug in full:
            merged.append(EffectiveRole(slug, name, Grant.full, ()))
        else:
            merged.append(
                EffectiveRole(slug, name, Grant.limited, tuple(sorted(limited[slug])))
            )
    return merged
