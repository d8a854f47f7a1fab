"""Match the snapshot's mapped IdP groups to the stored groups that mirror them.

The store derives roles from stored group membership: a mapping grants its role
to the members of every stored group whose externalId equals the mapping's
group reference, or whose displayName equals it without regard to case. So the
stored groups that must mirror an IdP group G's members are:

1. the stored groups whose externalId is G's IdP id, and
2. the stored groups that a mapping resolved to G matches by that rule.

When neither exists, the stored group named like G without an externalId
mirrors it, because Okta pushes groups that way. When no stored group has that
name either, a group is created with G's name and id. Plan and guards share this
matching.
"""

from __future__ import annotations

from dataclasses import dataclass

from scim_reconciler.errors import ConflictError
from scim_reconciler.reconcile.model import (
    GroupSnapshot,
    MappingRule,
    Snapshot,
    StoredGroup,
    StoredState,
)
from scim_reconciler.text import comparison_key

NEW_GROUP_PREFIX = "idp:"


@dataclass(frozen=True)
class GroupTarget:
    """A stored group that mirrors mapped IdP groups, or one to create.

    ``key`` is the stored group's id, or ``idp:`` plus the IdP group id for a
    group that does not exist yet. ``mappings`` are the mappings that match the
    group by the store's rule, so its members receive their roles.
    """

    key: str
    stored: StoredGroup | None
    name: str
    external_id: str | None
    idp_group_ids: tuple[str, ...]
    mappings: tuple[MappingRule, ...]


@dataclass(frozen=True)
class GroupMatch:
    """Mapped IdP groups of a snapshot and the stored groups that mirror them."""

    # Mapped IdP groups by IdP id; two references to one group appear once.
    snapshots: dict[str, GroupSnapshot]
    # The mappings resolved to each IdP group, by IdP id.
    mappings: dict[str, tuple[MappingRule, ...]]
    targets: dict[str, GroupTarget]
    # Target keys of each IdP group, by IdP id; empty when none can exist.
    targets_of: dict[str, tuple[str, ...]]
    warnings: tuple[str, ...]


def match_groups(snapshot: Snapshot, stored: StoredState) -> GroupMatch:
    """Find the stored groups that mirror each mapped IdP group of the snapshot.

    Raises ConflictError when a mapping's group is missing from the snapshot,
    because the mappings then changed after the snapshot was taken.
    """
    snapshots, mappings_of = _resolve_mappings(snapshot, stored.mappings)
    index = _StoredIndex(stored.groups)
    mapping_index = _MappingIndex(stored.mappings)
    warnings: list[str] = []

    members_of: dict[str, list[str]] = {}
    new_groups: dict[str, GroupSnapshot] = {}
    targets_of: dict[str, tuple[str, ...]] = {}
    for idp_id, group_snapshot in snapshots.items():
        keys = index.mirrors(group_snapshot.group.id, mappings_of[idp_id])
        if not keys:
            keys, warning = _fallback(group_snapshot, index)
            if warning:
                warnings.append(warning)
        for key in keys:
            members_of.setdefault(key, []).append(idp_id)
            if key.startswith(NEW_GROUP_PREFIX):
                new_groups[key] = group_snapshot
        targets_of[idp_id] = keys

    targets: dict[str, GroupTarget] = {}
    for key, idp_ids in members_of.items():
        group = index.by_id.get(key)
        if group is not None:
            name, external_id = group.display_name, group.external_id
        else:
            name = new_groups[key].group.name
            external_id = new_groups[key].group.id
        matched = mapping_index.matching(name, external_id)
        targets[key] = GroupTarget(
            key, group, name, external_id, tuple(idp_ids), matched
        )
        if len(idp_ids) > 1:
            mirrored = ", ".join(_describe(snapshots[idp_id]) for idp_id in idp_ids)
            warnings.append(
                f"stored group {name!r} mirrors several IdP groups ({mirrored}), so "
                "its members are the union of theirs"
            )

    warnings.extend(_unmatched_mappings(snapshots, mappings_of, targets, targets_of))
    return GroupMatch(snapshots, mappings_of, targets, targets_of, tuple(warnings))


def _resolve_mappings(
    snapshot: Snapshot, mappings: tuple[MappingRule, ...]
) -> tuple[dict[str, GroupSnapshot], dict[str, tuple[MappingRule, ...]]]:
    """Find each mapping's group in the snapshot, keyed by IdP group id."""
    by_reference = {group.reference: group for group in snapshot.groups}
    by_key: dict[str, GroupSnapshot] = {}
    for group in snapshot.groups:
        by_key.setdefault(comparison_key(group.reference), group)
    snapshots: dict[str, GroupSnapshot] = {}
    mappings_of: dict[str, list[MappingRule]] = {}
    for mapping in sorted(mappings, key=lambda mapping: mapping.id):
        found = by_reference.get(mapping.group) or by_key.get(
            comparison_key(mapping.group)
        )
        if found is None:
            raise ConflictError(
                f"mapping {mapping.id} names group {mapping.group!r}, which the "
                "snapshot does not contain: the mappings changed during the run, "
                "so run it again"
            )
        snapshots.setdefault(found.group.id, found)
        mappings_of.setdefault(found.group.id, []).append(mapping)
    ordered = sorted(snapshots)
    return (
        {idp_id: snapshots[idp_id] for idp_id in ordered},
        {idp_id: tuple(mappings_of[idp_id]) for idp_id in ordered},
    )


class _MappingIndex:
    """Mappings by group reference and by its comparison key."""

    def __init__(self, mappings: tuple[MappingRule, ...]) -> None:
        self.by_reference: dict[str, list[MappingRule]] = {}
        self.by_key: dict[str, list[MappingRule]] = {}
        for mapping in mappings:
            self.by_reference.setdefault(mapping.group, []).append(mapping)
            self.by_key.setdefault(comparison_key(mapping.group), []).append(mapping)

    def matching(self, name: str, external_id: str | None) -> tuple[MappingRule, ...]:
        """Return the mappings that match a stored group, in mapping id order."""
        found = {
            mapping.id: mapping for mapping in self.by_key.get(comparison_key(name), [])
        }
        if external_id is not None:
            for mapping in self.by_reference.get(external_id, []):
                found[mapping.id] = mapping
        return tuple(found[mapping_id] for mapping_id in sorted(found))


class _StoredIndex:
    """Stored groups by id, externalId and comparison key of the displayName."""

    def __init__(self, groups: tuple[StoredGroup, ...]) -> None:
        self.by_id = {group.id: group for group in groups}
        self.by_external_id: dict[str, list[StoredGroup]] = {}
        self.by_name: dict[str, list[StoredGroup]] = {}
        for group in groups:
            if group.external_id is not None:
                self.by_external_id.setdefault(group.external_id, []).append(group)
            self.by_name.setdefault(comparison_key(group.display_name), []).append(
                group
            )

    def mirrors(
        self, idp_id: str, mappings: tuple[MappingRule, ...]
    ) -> tuple[str, ...]:
        """Return the ids of stored groups found by IdP id or by the mappings."""
        found = {group.id for group in self.by_external_id.get(idp_id, [])}
        for mapping in mappings:
            found.update(g.id for g in self.by_external_id.get(mapping.group, []))
            found.update(
                g.id for g in self.by_name.get(comparison_key(mapping.group), [])
            )
        return tuple(sorted(found))


def _fallback(
    group_snapshot: GroupSnapshot, index: _StoredIndex
) -> tuple[tuple[str, ...], str | None]:
    """Pick the stored group named like the IdP group, or plan to create one."""
    group = group_snapshot.group
    same_name = index.by_name.get(comparison_key(group.name), [])
    if not same_name:
        return (NEW_GROUP_PREFIX + group.id,), None
    without_id = [stored for stored in same_name if stored.external_id is None]
    if without_id:
        return (without_id[0].id,), None
    holder = same_name[0]
    return (), (
        f"IdP group {_describe(group_snapshot)} has no stored group, and none can "
        f"be created because stored group {holder.display_name!r} already has "
        f"that name with externalId {holder.external_id!r}; its members get no "
        "stored membership or role from it until that group is renamed or removed"
    )


def _unmatched_mappings(
    snapshots: dict[str, GroupSnapshot],
    mappings_of: dict[str, tuple[MappingRule, ...]],
    targets: dict[str, GroupTarget],
    targets_of: dict[str, tuple[str, ...]],
) -> list[str]:
    """Warn about mappings that no stored group of their IdP group matches."""
    warnings = []
    for idp_id, mappings in mappings_of.items():
        mirrors = [targets[key] for key in targets_of[idp_id]]
        for mapping in mappings:
            if mirrors and not any(mapping in target.mappings for target in mirrors):
                names = ", ".join(repr(target.name) for target in mirrors)
                label = "stored group" if len(mirrors) == 1 else "stored groups"
                warnings.append(
                    f"mapping {mapping.id} names group {mapping.group!r}, which the "
                    f"IdP resolves to {_describe(snapshots[idp_id])}, but no "
                    f"{label} mirroring it ({names}) has that name or externalId, "
                    "so the mapping grants no role: map the group by the stored "
                    "group's name or externalId"
                )
    return warnings


def _describe(group_snapshot: GroupSnapshot) -> str:
    return f"{group_snapshot.group.name!r} ({group_snapshot.group.id})"
