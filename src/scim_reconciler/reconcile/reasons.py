"""The reasons a plan gives, one sentence per change, and the role details.

Each reason names the IdP state (user id and status), the mapped groups and
mappings involved, and what changes, so an admin can check it in the IdP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scim_reconciler.reconcile.groups import GroupTarget
from scim_reconciler.reconcile.model import (
    IdpGroup,
    IdpUser,
    MappingRule,
    Snapshot,
    StoredUser,
)
from scim_reconciler.services.roles import EffectiveRole, Grant

# Longer lists in a reason end in "and N more"; details keep every item.
_LIST_LIMIT = 3


def idp_group(
    group: IdpGroup, mappings: Sequence[MappingRule], role_names: Mapping[str, str]
) -> str:
    """Describe a mapped IdP group with the mappings that name it."""
    grants = "; ".join(
        f"mapping {mapping.id} grants {_grant(mapping, role_names)}"
        for mapping in mappings
    )
    return f"{group.name!r} ({group.id}; {grants})"


def create(user: IdpUser, groups: list[str]) -> str:
    return (
        f"IdP user {user.id} is active{_status(user)} and a member of "
        f"{_groups(groups)}, but has no dashboard account"
    )


def reactivate(
    user: IdpUser,
    account: StoredUser,
    groups: list[str],
    changed: dict[str, dict[str, Any]],
) -> str:
    state = "deleted" if account.deleted else "deactivated"
    reason = (
        f"IdP user {user.id} is active{_status(user)} and a member of "
        f"{_groups(groups)}, but its dashboard account is {state}; the same "
        "account is reactivated"
    )
    if changed:
        reason += f", and its profile changes: {_changes(changed)}"
    return reason


def profile_update(
    user: IdpUser, changed: dict[str, dict[str, Any]], found_by_user_name: bool
) -> str:
    reason = f"the IdP's profile of user {user.id} differs: {_changes(changed)}"
    if "userName" in changed and not found_by_user_name:
        reason += " (the account was found by externalId, so it is renamed)"
    return reason


def deactivate_in_idp(user: IdpUser) -> str:
    state = f"status {user.status}" if user.status else "active is false"
    return f"IdP user {user.id} is deactivated in the IdP ({state})"


def deactivate_unlisted(
    user: IdpUser | None, account: StoredUser, left: list[str]
) -> str:
    if user is not None:
        reason = f"IdP user {user.id} is in no mapped group"
    else:
        reason = "no mapped group of the IdP lists this user"
        if account.external_id is not None:
            reason += f" (externalId {account.external_id})"
    if left:
        return f"{reason}; the user left {_join([repr(name) for name in left])}"
    return f"{reason}, and the store had it in no mapped group either"


def membership(
    joins: list[GroupTarget],
    leaves: list[GroupTarget],
    listed_in: Mapping[str, str],
    idp_names: Mapping[str, str],
) -> str:
    """Explain each join and leave by the IdP groups that list the user or not.

    ``listed_in`` are the IdP groups that list the user, and ``idp_names`` the
    names of all mapped IdP groups, both by IdP id.
    """
    parts = []
    for target in joins:
        listing = [repr(listed_in[i]) for i in target.idp_group_ids if i in listed_in]
        created = " (a new stored group)" if target.stored is None else ""
        parts.append(
            f"joins {target.name!r}{created} because IdP group "
            f"{_join(listing)} lists the user"
        )
    for target in leaves:
        if any(idp_id in listed_in for idp_id in target.idp_group_ids):
            parts.append(
                f"leaves {target.name!r} because the account is deleted and its IdP "
                "user is inactive"
            )
            continue
        mirrored = [repr(idp_names[idp_id]) for idp_id in target.idp_group_ids]
        parts.append(
            f"leaves {target.name!r} because IdP group {_join(mirrored)} no longer "
            "lists the user"
        )
    return "; ".join(parts)


def role_key(
    roles: Iterable[EffectiveRole],
) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """Return what makes effective roles differ, leaving out display names."""
    return tuple((role.role_slug, role.grant.value, role.object_ids) for role in roles)


def role_entry(role: EffectiveRole) -> dict[str, Any]:
    return {
        "role": role.role_slug,
        "name": role.name,
        "grant": role.grant.value,
        "object_ids": list(role.object_ids),
    }


def role_change(
    before: Sequence[EffectiveRole],
    after: Sequence[EffectiveRole],
    mappings: Iterable[MappingRule],
) -> str:
    """Explain the effective roles gained, lost or rescoped."""
    old = {role.role_slug: role for role in before}
    new = {role.role_slug: role for role in after}
    granting: dict[str, set[int]] = {}
    for mapping in mappings:
        granting.setdefault(mapping.role_slug, set()).add(mapping.id)
    parts = []
    for slug in sorted(old.keys() | new.keys()):
        if slug not in old:
            ids = ", ".join(str(mapping_id) for mapping_id in sorted(granting[slug]))
            label = "mapping" if len(granting[slug]) == 1 else "mappings"
            parts.append(
                f"gains {new[slug].name} {_scope(new[slug])} through {label} {ids}"
            )
        elif slug not in new:
            parts.append(f"loses {old[slug].name}")
        elif role_key([old[slug]]) != role_key([new[slug]]):
            parts.append(
                f"{new[slug].name} changes from {_scope(old[slug])} to "
                f"{_scope(new[slug])}"
            )
    return "effective roles follow the membership change: " + "; ".join(parts)


def skipped_members(snapshot: Snapshot) -> str:
    counts = ", ".join(
        f"{count} {member_type}"
        for member_type, count in snapshot.skipped_member_types.items()
    )
    if snapshot.skipped_members == 1:
        warning = f"1 member of a mapped group is not a user ({counts}) and was skipped"
    else:
        warning = (
            f"{snapshot.skipped_members} members of mapped groups are not users "
            f"({counts}) and were skipped"
        )
    if (
        not snapshot.nested_groups_flattened
        and "group" in snapshot.skipped_member_types
    ):
        warning += (
            "; this connector does not flatten nested groups, so a user who is in "
            "a mapped group only through a nested group counts as not in it: map "
            "the nested groups too"
        )
    return warning


def _grant(mapping: MappingRule, role_names: Mapping[str, str]) -> str:
    name = role_names.get(mapping.role_slug, mapping.role_slug)
    if mapping.grant is Grant.full:
        return name
    return f"{name} limited to {len(mapping.object_ids)} objects"


def _scope(role: EffectiveRole) -> str:
    if role.grant is Grant.full:
        return "in full"
    return f"limited to {_join(list(role.object_ids))}"


def _status(user: IdpUser) -> str:
    return f" (status {user.status})" if user.status else ""


def _groups(described: list[str]) -> str:
    noun = "mapped group" if len(described) == 1 else "mapped groups"
    return f"{noun} {_join(described)}"


def _changes(changed: dict[str, dict[str, Any]]) -> str:
    return ", ".join(
        f"{attribute} from {_value(change['before'])} to {_value(change['after'])}"
        for attribute, change in changed.items()
    )


def _value(value: Any) -> str:
    return "none" if value is None else repr(value)


def _join(items: list[str]) -> str:
    """Join items as "a, b and c", naming at most a few of them."""
    if len(items) > _LIST_LIMIT:
        named = items[:_LIST_LIMIT]
        return ", ".join(named) + f" and {len(items) - _LIST_LIMIT} more"
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
