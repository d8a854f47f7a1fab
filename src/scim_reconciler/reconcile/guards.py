"""Hold the changes of a plan that need an admin's approval.

Two guards run after planning; a held change keeps its reason and gets a
``hold_reason``, and the rest of the plan still applies.

- Suspect empty group: a mapped IdP group that comes back empty while a stored
  group mirroring it has members may be an IdP error (a wrong filter, a
  half-finished migration), not a real mass removal. The membership changes
  that remove users from that stored group are held, with the role changes
  they cause and the deactivations of users who thereby end up in no mapped
  group.
- Deactivation limit: when the deactivations still planned exceed
  ``Policy.max_deactivations`` or ``Policy.max_deactivation_percent`` of the
  active IdP-managed users, all of them are held, because choosing which to
  apply first would be arbitrary.

When a change is held, the changes of the same user that depend on it are held
too, so what applies never leaves a user half changed.
"""

from __future__ import annotations

from dataclasses import replace

from scim_reconciler.reconcile.groups import match_groups
from scim_reconciler.reconcile.model import (
    Change,
    ChangeKind,
    ChangeStatus,
    Plan,
    Policy,
    Snapshot,
    StoredState,
)

NO_TOKEN_WARNING = (
    "the organization has no valid SCIM token, so this run only plans and applies "
    "nothing; changes apply again once an admin generates a new token"
)


def apply_guards(
    plan: Plan,
    snapshot: Snapshot,
    stored: StoredState,
    policy: Policy,
    *,
    can_apply: bool,
) -> Plan:
    """Return the plan with the changes that need approval set to held.

    ``can_apply`` is False when the organization has no valid SCIM token. The
    caller then records the run as paused and applies nothing; this function
    only adds a warning, so a preview shows why nothing will apply.
    """
    changes = list(plan.changes)
    positions = _positions_by_user(changes)
    holds: dict[int, str] = {}
    warnings = list(plan.warnings)
    if policy.hold_empty_groups:
        warnings.extend(
            _hold_suspect_removals(changes, positions, holds, snapshot, stored)
        )
    warning = _hold_excess_deactivations(changes, positions, holds, stored, policy)
    if warning is not None:
        warnings.append(warning)
    if not can_apply:
        warnings.append(NO_TOKEN_WARNING)
    guarded = tuple(
        replace(change, status=ChangeStatus.held, hold_reason=holds[position])
        if position in holds
        else change
        for position, change in enumerate(changes)
    )
    return replace(plan, changes=guarded, warnings=tuple(warnings))


def _user_key(change: Change) -> str:
    return change.user_id or f"idp:{change.external_id}"


def _positions_by_user(changes: list[Change]) -> dict[str, list[int]]:
    positions: dict[str, list[int]] = {}
    for position, change in enumerate(changes):
        positions.setdefault(_user_key(change), []).append(position)
    return positions


def _suspect_groups(snapshot: Snapshot, stored: StoredState) -> dict[str, str]:
    """Return the hold reason for each stored group whose IdP group came back empty."""
    if not stored.mappings:
        return {}
    match = match_groups(snapshot, stored)
    suspect: dict[str, str] = {}
    for idp_id, group_snapshot in match.snapshots.items():
        if group_snapshot.member_ids:
            continue
        for key in match.targets_of[idp_id]:
            target = match.targets[key]
            if target.stored is None or not target.stored.member_ids:
                continue
            suspect[target.stored.id] = (
                f"IdP group {group_snapshot.group.name!r} ({idp_id}) came back empty, "
                f"but its stored group {target.name!r} has "
                f"{len(target.stored.member_ids)} members; an empty answer can be an "
                "IdP error, so removals from it wait for an admin's approval"
            )
    return suspect


def _hold_suspect_removals(
    changes: list[Change],
    positions: dict[str, list[int]],
    holds: dict[int, str],
    snapshot: Snapshot,
    stored: StoredState,
) -> list[str]:
    """Hold removals from suspect groups and what they cause; return warnings."""
    suspect = _suspect_groups(snapshot, stored)
    if not suspect:
        # Spares building the details of every membership change.
        return []
    held_per_group: dict[str, int] = {}
    for change in changes:
        if change.kind is not ChangeKind.membership_change:
            continue
        left = [
            entry["group_id"]
            for entry in change.details.get("leave", [])
            if entry.get("group_id") in suspect
        ]
        if not left:
            continue
        for group_id in left:
            held_per_group[group_id] = held_per_group.get(group_id, 0) + 1
        for position in positions[_user_key(change)]:
            other = changes[position]
            if _caused_by_removal(other):
                holds.setdefault(position, suspect[left[0]])
    return [
        f"{suspect[group_id]} ({count} held)"
        for group_id, count in sorted(held_per_group.items())
    ]


def _caused_by_removal(change: Change) -> bool:
    """Tell whether a change follows from the user's membership change."""
    if change.kind in (ChangeKind.membership_change, ChangeKind.role_change):
        return True
    return (
        change.kind is ChangeKind.deactivate
        and change.details.get("cause") == "no_mapped_group"
    )


def _hold_excess_deactivations(
    changes: list[Change],
    positions: dict[str, list[int]],
    holds: dict[int, str],
    stored: StoredState,
    policy: Policy,
) -> str | None:
    """Hold every planned deactivation if they exceed a limit; return a warning."""
    planned = [
        position
        for position, change in enumerate(changes)
        if change.kind is ChangeKind.deactivate and position not in holds
    ]
    count = len(planned)
    if count == 0:
        return None
    active = sum(
        1
        for user in stored.users
        if user.managed_by_idp and user.active and not user.deleted
    )
    percent = 100.0 * count / active if active else 100.0
    if count > policy.max_deactivations:
        limit = f"more than the limit of {policy.max_deactivations} per run"
    elif percent > policy.max_deactivation_percent:
        limit = (
            f"{percent:.1f}% of the {active} active IdP-managed "
            f"{'user' if active == 1 else 'users'}, more than "
            f"the limit of {policy.max_deactivation_percent:g}%"
        )
    else:
        return None
    reason = (
        f"this run would deactivate {count} {'user' if count == 1 else 'users'}, "
        f"{limit}; the deactivations "
        "wait for an admin's approval while the other changes apply"
    )
    for position in planned:
        for other in positions[_user_key(changes[position])]:
            holds.setdefault(other, reason)
    return reason
