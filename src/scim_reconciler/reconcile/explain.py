"""Reasons and details of the most frequent changes, built when they are read.

A first run plans a create, a membership change and a role change for every
new user. Rather than keep a sentence and a few dicts for each of them, the
planner gives each change an explanation. It refers to the IdP user, the
user's groups and the plan's shared ``PlanIndex``, and builds the reason and
details again on every read. Apply and the run record read them once per
batch of changes.

Groups are given as *target keys* (see ``GroupTarget``) or as the IdP ids of
the mapped groups that list a user, which the index turns into target keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scim_reconciler.reconcile import reasons
from scim_reconciler.reconcile.groups import NEW_GROUP_PREFIX, GroupMatch, GroupTarget
from scim_reconciler.reconcile.model import Explanation, IdpUser, MappingRule
from scim_reconciler.services.roles import EffectiveRole, RoleGrant, merge_grants

NO_GROUPS: frozenset[str] = frozenset()

# Effective roles kept per set of groups. When users share a few sets of
# groups, a small cache serves nearly every lookup. When each user's set
# differs, as in bench/reconcile_bench.py, the bound keeps the cache from
# holding one entry per user.
ROLES_CACHE_SIZE = 4096


class PlanIndex:
    """Indexes of a plan's mapped groups, read by the planner and explanations."""

    def __init__(
        self,
        groups: GroupMatch,
        idp_groups_of: Mapping[str, Sequence[str]],
        role_names: dict[str, str],
    ) -> None:
        # Stored groups that mirror mapped IdP groups, or groups to create.
        self.targets = groups.targets
        self.targets_of = groups.targets_of
        # Names of the mapped IdP groups, and each with the mappings that name
        # it as reasons put it, by IdP id.
        self.idp_names = {
            idp_id: snapshot.group.name for idp_id, snapshot in groups.snapshots.items()
        }
        self.idp_descriptions = {
            idp_id: reasons.idp_group(
                snapshot.group, groups.mappings[idp_id], role_names
            )
            for idp_id, snapshot in groups.snapshots.items()
        }
        # Mapped IdP groups that list each IdP user, by the user's IdP id.
        self.idp_groups_of = idp_groups_of
        self.role_names = role_names
        self._roles: dict[frozenset[str], tuple[EffectiveRole, ...]] = {}

    def keys_of(self, idp_groups: Iterable[str]) -> frozenset[str]:
        """Return the target keys of the stored groups mirroring the IdP groups."""
        return frozenset(
            key for idp_id in idp_groups for key in self.targets_of[idp_id]
        )

    def roles(self, keys: frozenset[str]) -> tuple[EffectiveRole, ...]:
        """Return the effective roles of a member of the groups with these keys."""
        roles = self._roles.get(keys)
        if roles is None:
            grants = [
                RoleGrant(mapping.role_slug, mapping.grant, mapping.object_ids)
                for mapping in self.mappings_of(keys)
            ]
            roles = tuple(merge_grants(grants, self.role_names))
            if len(self._roles) >= ROLES_CACHE_SIZE:
                self._roles.clear()
            self._roles[keys] = roles
        return roles

    def by_name(self, keys: Iterable[str]) -> list[GroupTarget]:
        targets = [self.targets[key] for key in keys]
        return sorted(targets, key=lambda target: (target.name.lower(), target.key))

    def mappings_of(self, keys: Iterable[str]) -> list[MappingRule]:
        return [mapping for key in keys for mapping in self.targets[key].mappings]


class NewAccount(Explanation):
    """Explains the create of an active IdP user, listed in a mapped group."""

    __slots__ = ("index", "user")

    def __init__(self, index: PlanIndex, user: IdpUser) -> None:
        self.index = index
        self.user = user

    def reason(self) -> str:
        idp_groups = self.index.idp_groups_of[self.user.id]
        described = [self.index.idp_descriptions[idp_id] for idp_id in idp_groups]
        return reasons.create(self.user, described)

    def details(self) -> dict[str, Any]:
        user = self.user
        idp_groups = self.index.idp_groups_of[user.id]
        profile = {
            "userName": user.user_name,
            "externalId": user.id,
            "email": user.email,
            "givenName": user.given_name,
            "familyName": user.family_name,
            "displayName": user.display_name,
        }
        groups = [self.index.idp_names[idp_id] for idp_id in idp_groups]
        return {"profile": profile, "groups": groups}


class MembershipChange(Explanation):
    """Explains the groups a user joins and leaves.

    ``current`` are the target keys of the groups the account is in, and
    ``target_groups`` the IdP ids of the mapped groups whose stored groups it
    ends up in. ``user`` is None for an account that no mapped group lists.
    """

    __slots__ = ("current", "index", "target_groups", "user")

    def __init__(
        self,
        index: PlanIndex,
        user: IdpUser | None,
        current: frozenset[str],
        target_groups: Sequence[str],
    ) -> None:
        self.index = index
        self.user = user
        self.current = current
        self.target_groups = target_groups

    def _sides(self) -> tuple[list[GroupTarget], list[GroupTarget]]:
        target = self.index.keys_of(self.target_groups)
        joins = self.index.by_name(target - self.current)
        return joins, self.index.by_name(self.current - target)

    def reason(self) -> str:
        return self._reason(*self._sides())

    def details(self) -> dict[str, Any]:
        return _membership_details(*self._sides())

    def explain(self) -> tuple[str, dict[str, Any]]:
        joins, leaves = self._sides()
        return self._reason(joins, leaves), _membership_details(joins, leaves)

    def _reason(self, joins: list[GroupTarget], leaves: list[GroupTarget]) -> str:
        index = self.index
        listed = index.idp_groups_of.get(self.user.id, ()) if self.user else ()
        listed_in = {idp_id: index.idp_names[idp_id] for idp_id in listed}
        return reasons.membership(joins, leaves, listed_in, index.idp_names)


class RoleChange(Explanation):
    """Explains the effective roles that follow a membership change.

    The groups are given as for ``MembershipChange``. The mappings of the
    groups the user ends up in are the ones that grant the roles gained.
    """

    __slots__ = ("current", "index", "target_groups")

    def __init__(
        self, index: PlanIndex, current: frozenset[str], target_groups: Sequence[str]
    ) -> None:
        self.index = index
        self.current = current
        self.target_groups = target_groups

    def reason(self) -> str:
        return self.explain()[0]

    def details(self) -> dict[str, Any]:
        target = self.index.keys_of(self.target_groups)
        before, after = self.index.roles(self.current), self.index.roles(target)
        return _role_details(before, after)

    def explain(self) -> tuple[str, dict[str, Any]]:
        target = self.index.keys_of(self.target_groups)
        before, after = self.index.roles(self.current), self.index.roles(target)
        mappings = self.index.mappings_of(target)
        reason = reasons.role_change(before, after, mappings)
        return reason, _role_details(before, after)


def _membership_details(
    joins: list[GroupTarget], leaves: list[GroupTarget]
) -> dict[str, Any]:
    return {
        "join": [membership_entry(group) for group in joins],
        "leave": [membership_entry(group) for group in leaves],
        "joined": [group.name for group in joins],
        "left": [group.name for group in leaves],
    }


def _role_details(
    before: Sequence[EffectiveRole], after: Sequence[EffectiveRole]
) -> dict[str, Any]:
    return {
        "before": [reasons.role_entry(role) for role in before],
        "after": [reasons.role_entry(role) for role in after],
    }


def membership_entry(target: GroupTarget) -> dict[str, Any]:
    """Describe a group for apply: stored id, name and the IdP group it mirrors.

    ``group_id`` is None for a group to create with ``name`` and externalId
    ``idp_group_id``.
    """
    return {
        "group_id": target.stored.id if target.stored else None,
        "name": target.name,
        "idp_group_id": (
            target.key.removeprefix(NEW_GROUP_PREFIX)
            if target.stored is None
            else target.idp_group_ids[0]
        ),
    }
