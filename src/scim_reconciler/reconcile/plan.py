"""Plan the changes that bring the store in line with a snapshot.

``make_plan`` is a pure function of the snapshot and the stored state. Rules,
per user:

- An IdP user who is active and in at least one mapped group gets an account:
  created when there is none, reactivated (same id) when it is deactivated or
  deleted, and its profile updated when the IdP's differs.
- An IdP user who is inactive in the IdP loses an active account.
- A stored IdP-managed account that no mapped group lists is deactivated.
- Membership of the stored groups that mirror mapped IdP groups follows the
  snapshot, and a role change accompanies each membership change that changes
  the user's effective roles.
- Accounts created by hand (managed by a person) are never changed.

docs/reconciliation.md describes the reasons and the ``details`` of each kind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

from scim_reconciler.errors import NotFoundError
from scim_reconciler.reconcile import reasons
from scim_reconciler.reconcile.explain import (
    NO_GROUPS,
    MembershipChange,
    NewAccount,
    PlanIndex,
    RoleChange,
)
from scim_reconciler.reconcile.groups import GroupMatch, match_groups
from scim_reconciler.reconcile.model import (
    Change,
    ChangeKind,
    Explained,
    Explanation,
    IdpUser,
    Plan,
    Snapshot,
    StoredState,
    StoredUser,
)
from scim_reconciler.reconcile.users import UserMatch, match_users
from scim_reconciler.text import comparison_key

NO_MAPPINGS_WARNING = (
    "the organization has no group-to-role mappings, so the run plans nothing: "
    "map an IdP group to a role with `scim-reconciler mapping add` first"
)

_KIND_ORDER = {
    kind: position
    for position, kind in enumerate(
        (
            ChangeKind.create,
            ChangeKind.reactivate,
            ChangeKind.profile_update,
            ChangeKind.deactivate,
            ChangeKind.membership_change,
            ChangeKind.role_change,
        )
    )
}


def make_plan(
    snapshot: Snapshot,
    stored: StoredState,
    *,
    only_user: str | None = None,
    only_group: str | None = None,
) -> Plan:
    """Plan the changes that bring the stored users in line with the snapshot.

    ``only_user`` (an IdP id, account id, externalId or userName) and
    ``only_group`` (a mapped group's reference, IdP id or name) restrict the
    plan to the changes of that user, or of the users who are or were members
    of that group. The snapshot must still be complete, so that decisions such
    as "in no mapped group" stay correct.

    Changes are ordered by userName without regard to case, and each user's
    changes by kind (see ``Change``); skipped users by userName.

    Raises ConflictError when a mapping's group is missing from the snapshot,
    and NotFoundError when ``only_user`` or ``only_group`` matches nothing.
    """
    if not stored.mappings:
        return Plan(changes=(), warnings=(NO_MAPPINGS_WARNING,))
    planner = _Planner(snapshot, stored)
    scope = _Scope(planner, only_user, only_group)
    planned: list[list[Change]] = []
    skipped: list[tuple[str, str]] = []
    new_users: list[IdpUser] = []

    # IdP users with an account, or with a reason to leave them alone.
    for user in snapshot.users.values():
        account = planner.users.accounts.get(user.id)
        skip_reason = planner.users.skipped.get(user.id)
        if account is None and skip_reason is None:
            if planner.wants_account(user):
                new_users.append(user)
        elif not scope.selects(user, account):
            continue
        elif skip_reason is not None:
            skipped.append((user.user_name, skip_reason))
        else:
            assert account is not None
            _add(planned, planner.plan_account(user, account))

    # Accounts that no IdP user claimed: no mapped group lists them.
    for account in stored.users:
        unclaimed = account.managed_by_idp and account.id not in planner.users.claimed
        if unclaimed and scope.selects(None, account):
            _add(planned, planner.plan_unlisted(account))

    # New accounts, in userName order, so the first of two equal userNames wins.
    new_users.sort(key=lambda user: (user.user_name.lower(), user.id))
    for user in new_users:
        conflict = planner.create_conflict(user)
        if not scope.selects(user, None):
            continue
        if conflict is not None:
            skipped.append((user.user_name, conflict))
        else:
            _add(planned, planner.plan_new(user))

    scope.check_found()
    planned.sort(key=_user_order)
    skipped.sort(key=lambda item: (item[0].lower(), item[1]))
    changes = tuple(change for user_changes in planned for change in user_changes)
    return Plan(changes, tuple(skipped), planner.warnings())


def _add(planned: list[list[Change]], changes: list[Change]) -> None:
    if changes:
        changes.sort(key=lambda change: _KIND_ORDER[change.kind])
        planned.append(changes)


def _user_order(changes: list[Change]) -> tuple[str, str]:
    first = changes[0]
    return first.user_name.lower(), first.user_id or f"idp:{first.external_id}"


class _Scope:
    """The users an on-demand run for one user or one group looks at."""

    def __init__(
        self, planner: _Planner, only_user: str | None, only_group: str | None
    ) -> None:
        self.planner = planner
        self.only_user = only_user
        self.user_key = comparison_key(only_user) if only_user is not None else ""
        self.only_group = only_group
        self.idp_groups: set[str] = set()
        self.keys: set[str] = set()
        if only_group is not None:
            self.idp_groups = planner.find_mapped_groups(only_group)
            self.keys = {
                key
                for idp_id in self.idp_groups
                for key in planner.groups.targets_of[idp_id]
            }
        self.found = False

    def selects(self, user: IdpUser | None, account: StoredUser | None) -> bool:
        if self.only_user is not None and not self._is_user(user, account):
            return False
        if self.only_group is not None and not self._in_group(user, account):
            return False
        self.found = True
        return True

    def _is_user(self, user: IdpUser | None, account: StoredUser | None) -> bool:
        reference, key = self.only_user, self.user_key
        if user is not None and (
            reference == user.id or comparison_key(user.user_name) == key
        ):
            return True
        return account is not None and (
            reference in (account.id, account.external_id)
            or comparison_key(account.user_name) == key
        )

    def _in_group(self, user: IdpUser | None, account: StoredUser | None) -> bool:
        planner = self.planner
        if user is not None and self.idp_groups.intersection(
            planner.idp_groups_of.get(user.id, ())
        ):
            return True
        return account is not None and bool(
            self.keys.intersection(planner.current_of.get(account.id, ()))
        )

    def check_found(self) -> None:
        """Raise NotFoundError if ``only_user`` matched no user."""
        if self.only_user is None or self.found:
            return
        where = f" among the members of group {self.only_group!r}"
        raise NotFoundError(
            f"user {self.only_user!r} is neither in a mapped group of the IdP nor "
            f"in the store{where if self.only_group else ''}: give an IdP id, "
            "account id, externalId or userName"
        )


class _Planner:
    """The indexes a plan needs, and the rules that plan one user's changes."""

    def __init__(self, snapshot: Snapshot, stored: StoredState) -> None:
        self.snapshot = snapshot
        self.stored = stored
        self.groups: GroupMatch = match_groups(snapshot, stored)
        # Mapped IdP groups of each IdP user, and target keys of each account.
        idp_groups_of: defaultdict[str, list[str]] = defaultdict(list)
        for idp_id, group_snapshot in self.groups.snapshots.items():
            for member_id in group_snapshot.member_ids:
                idp_groups_of[member_id].append(idp_id)
        current_of: defaultdict[str, set[str]] = defaultdict(set)
        for key, target in self.groups.targets.items():
            if target.stored is not None:
                for user_id in target.stored.member_ids:
                    current_of[user_id].add(key)
        # Plain dicts, so that a lookup of an unlisted user cannot add it.
        self.idp_groups_of = dict(idp_groups_of)
        # Frozen once here, because the changes of an account keep its keys.
        self.current_of = {
            user_id: frozenset(keys) for user_id, keys in current_of.items()
        }
        self.index = PlanIndex(self.groups, self.idp_groups_of, stored.role_names)
        self.idp_names = self.index.idp_names
        self.users: UserMatch = match_users(snapshot.users.values(), stored.users)
        self.created: dict[str, str] = {}
        self.rename_warnings: list[str] = []

    @cached_property
    def by_user_name(self) -> dict[str, StoredUser]:
        return {comparison_key(user.user_name): user for user in self.stored.users}

    @cached_property
    def reserved(self) -> set[str]:
        """Return the userNames that accounts take on, so no create reuses one."""
        return {
            comparison_key(self.snapshot.users[idp_id].user_name)
            for idp_id in self.users.accounts
        }

    def find_mapped_groups(self, reference: str) -> set[str]:
        """Return the IdP ids of the mapped groups a reference names."""
        key = comparison_key(reference)
        found = {
            idp_id
            for idp_id, group_snapshot in self.groups.snapshots.items()
            if reference in (group_snapshot.reference, idp_id)
            or key == comparison_key(group_snapshot.group.name)
            or any(
                key == comparison_key(mapping.group)
                for mapping in self.groups.mappings[idp_id]
            )
        }
        if not found:
            names = ", ".join(repr(name) for name in self.idp_names.values())
            raise NotFoundError(
                f"group {reference!r} is not a mapped group: the mapped groups are "
                f"{names}"
            )
        return found

    def warnings(self) -> tuple[str, ...]:
        found = list(self.groups.warnings)
        if self.snapshot.skipped_members:
            found.append(reasons.skipped_members(self.snapshot))
        found.extend(self.rename_warnings)
        return tuple(found)

    def wants_account(self, user: IdpUser) -> bool:
        """Tell whether the user is active in the IdP and in a mapped group."""
        return user.active and user.id in self.idp_groups_of

    def create_conflict(self, user: IdpUser) -> str | None:
        """Return why a new user's account must wait, or None.

        Call in the order of creation: the first of two users with one
        userName gets the account.
        """
        key = comparison_key(user.user_name)
        if key in self.created:
            return (
                f"userName {user.user_name!r} is also the userName of IdP user "
                f"{self.created[key]}, which this plan creates first"
            )
        if key in self.reserved:
            return (
                f"userName {user.user_name!r} is the new userName of an existing "
                "dashboard account in this plan, and an IdP user never gets a "
                "second account"
            )
        self.created[key] = user.id
        return None

    def plan_new(self, user: IdpUser) -> list[Change]:
        """Plan the account of an active, listed IdP user who has none."""
        idp_groups = self.idp_groups_of[user.id]
        explanation = NewAccount(self.index, user)
        create = _change(ChangeKind.create, user, None, explanation)
        return [create, *self._membership(user, None, NO_GROUPS, idp_groups)]

    def plan_account(self, user: IdpUser, account: StoredUser) -> list[Change]:
        """Plan the changes of an IdP user's existing account."""
        idp_groups = self.idp_groups_of.get(user.id, [])
        was_active = account.active and not account.deleted
        changes: list[Change] = []
        # IdP ids of the mapped groups whose stored groups the account ends up in.
        target: Sequence[str] = idp_groups
        if user.active and idp_groups:
            changes.extend(self._keep_active(user, account, idp_groups))
        elif not user.active:
            if was_active:
                reason = reasons.deactivate_in_idp(user)
                details = {"cause": "idp_inactive", "idp_status": user.status}
                explained = Explained(reason, details)
                changes.append(_change(ChangeKind.deactivate, user, account, explained))
            # A deleted account stays out of groups while the IdP user is inactive.
            if account.deleted:
                target = ()
        else:
            if was_active:
                changes.append(self._deactivate_unlisted(user, account))
            target = ()
        current = self.current_of.get(account.id, NO_GROUPS)
        return changes + self._membership(user, account, current, target)

    def plan_unlisted(self, account: StoredUser) -> list[Change]:
        """Plan the changes of an account that no mapped group lists."""
        changes = []
        if account.active and not account.deleted:
            changes.append(self._deactivate_unlisted(None, account))
        current = self.current_of.get(account.id, NO_GROUPS)
        return changes + self._membership(None, account, current, ())

    def _keep_active(
        self, user: IdpUser, account: StoredUser, idp_groups: list[str]
    ) -> list[Change]:
        """Plan the reactivation or profile update of a listed, active IdP user."""
        if account.active and not account.deleted:
            if _same_profile(user, account):
                return []
            profile, changed = self._profile(user, account)
            if not changed:
                return []
            by_user_name = user.id in self.users.found_by_user_name
            reason = reasons.profile_update(user, changed, by_user_name)
            update = Explained(reason, {"profile": profile, "changed": changed})
            return [_change(ChangeKind.profile_update, user, account, update)]
        profile, changed = self._profile(user, account)
        described = [self.index.idp_descriptions[idp_id] for idp_id in idp_groups]
        reason = reasons.reactivate(user, account, described, changed)
        details: dict[str, Any] = {
            "profile": profile,
            "changed": changed,
            "previous_state": "deleted" if account.deleted else "deactivated",
        }
        explained = Explained(reason, details)
        return [_change(ChangeKind.reactivate, user, account, explained)]

    def _deactivate_unlisted(self, user: IdpUser | None, account: StoredUser) -> Change:
        left = self._names(self.current_of.get(account.id, ()))
        reason = reasons.deactivate_unlisted(user, account, left)
        details = {
            "cause": "no_mapped_group",
            "idp_status": user.status if user is not None else None,
            "left": left,
        }
        explained = Explained(reason, details)
        return _change(ChangeKind.deactivate, user, account, explained)

    def _profile(
        self, user: IdpUser, account: StoredUser
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Return the profile the account takes on and the attributes that change.

        Keys are SCIM attribute names. An attribute the IdP does not report
        (None) keeps its stored value. Emails compare without regard to case,
        because the store keeps them case-folded.
        """
        user_name = user.user_name
        if user_name != account.user_name:
            user_name = self._allowed_user_name(user, account)
        profile = {
            "userName": user_name,
            "externalId": user.id,
            "email": _reported(user.email, account.email),
            "givenName": _reported(user.given_name, account.given_name),
            "familyName": _reported(user.family_name, account.family_name),
            "displayName": _reported(user.display_name, account.display_name),
        }
        stored = (
            account.user_name,
            account.external_id,
            account.email,
            account.given_name,
            account.family_name,
            account.display_name,
        )
        changed: dict[str, dict[str, Any]] = {}
        for (attribute, after), before in zip(profile.items(), stored, strict=True):
            if before == after or (
                attribute == "email"
                and before is not None
                and after is not None
                and comparison_key(before) == comparison_key(after)
            ):
                continue
            changed[attribute] = {"before": before, "after": after}
        return profile, changed

    def _allowed_user_name(self, user: IdpUser, account: StoredUser) -> str:
        """Return the IdP's userName, or the old one while another account has it."""
        holder = self.by_user_name.get(comparison_key(user.user_name))
        if holder is None or holder.id == account.id:
            return user.user_name
        # NOTE: two accounts that swap userNames in the IdP wait for each other
        # on every run, so an admin has to rename one of them by hand.
        self.rename_warnings.append(
            f"dashboard account {account.user_name!r} (IdP user {user.id}) keeps its "
            f"userName: the IdP's userName {user.user_name!r} is still held by "
            f"account {holder.user_name!r} ({holder.id}); it is renamed once that "
            "account gives the userName up"
        )
        return account.user_name

    # Membership and roles

    def _membership(
        self,
        user: IdpUser | None,
        account: StoredUser | None,
        current: frozenset[str],
        target_groups: Sequence[str],
    ) -> list[Change]:
        """Plan the membership change and the role change it causes, if any.

        ``current`` are the target keys of the account's groups, and
        ``target_groups`` the IdP ids of the mapped groups it should mirror.
        """
        index = self.index
        target = index.keys_of(target_groups)
        if current == target:
            return []
        versions = {
            stored.id: stored.version
            for key in current ^ target
            if (stored := index.targets[key].stored) is not None
        }
        explanation = MembershipChange(index, user, current, target_groups)
        kind = ChangeKind.membership_change
        changes = [_change(kind, user, account, explanation, versions)]

        before, after = index.roles(current), index.roles(target)
        if reasons.role_key(before) != reasons.role_key(after):
            roles = RoleChange(index, current, target_groups)
            changes.append(_change(ChangeKind.role_change, user, account, roles))
        return changes

    def _names(self, keys: Iterable[str]) -> list[str]:
        return sorted(self.groups.targets[key].name for key in keys)


def _same_profile(user: IdpUser, account: StoredUser) -> bool:
    """Tell quickly whether the IdP's profile matches the account's.

    This is the common case of a run, so it compares before building the
    profile that ``_Planner._profile`` would.
    """
    return (
        user.user_name == account.user_name
        and user.id == account.external_id
        and (user.given_name is None or user.given_name == account.given_name)
        and (user.family_name is None or user.family_name == account.family_name)
        and (user.display_name is None or user.display_name == account.display_name)
        and (
            user.email is None
            or user.email == account.email
            or (
                account.email is not None
                and comparison_key(user.email) == comparison_key(account.email)
            )
        )
    )


def _reported(reported: str | None, stored: str | None) -> str | None:
    return stored if reported is None else reported


def _change(
    kind: ChangeKind,
    user: IdpUser | None,
    account: StoredUser | None,
    explanation: Explanation,
    group_versions: dict[str, int] | None = None,
) -> Change:
    """Build a change of the account, or of the IdP user when it has none."""
    if account is not None:
        external_id = user.id if user is not None else account.external_id
        return Change(
            kind=kind,
            user_name=account.user_name,
            external_id=external_id,
            user_id=account.id,
            expected_version=account.version,
            group_versions=group_versions,
            explanation=explanation,
        )
    assert user is not None
    return Change(
        kind=kind,
        user_name=user.user_name,
        external_id=user.id,
        group_versions=group_versions,
        explanation=explanation,
    )
