"""Match IdP users to stored users, so that no IdP user gets a second account.

A stored user is found by the IdP's immutable id (the stored externalId) first,
and by userName without regard to case second. A userName match counts only if
the stored user has no externalId yet: one with another externalId belongs to
another IdP identity, which the SCIM push side rejects in the same way. Each
stored user is claimed by at most one IdP user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scim_reconciler.reconcile.model import IdpUser, StoredUser
from scim_reconciler.text import comparison_key


@dataclass(frozen=True)
class UserMatch:
    """The outcome of matching: accounts found, users to skip, and the rest."""

    # Stored IdP-managed user of each matched IdP user, by IdP id.
    accounts: dict[str, StoredUser]
    # IdP ids of the users whose account was found by userName, not externalId.
    found_by_user_name: frozenset[str]
    # IdP users the plan must leave alone, by IdP id, with the reason.
    skipped: dict[str, str]
    # Stored users that some IdP user claimed, managed by the IdP or not.
    claimed: frozenset[str]


def match_users(
    idp_users: Iterable[IdpUser], stored_users: Iterable[StoredUser]
) -> UserMatch:
    """Find each IdP user's stored account.

    IdP users are taken in the order of their ids, so the outcome does not
    depend on the order of the snapshot. An IdP user whose account was created
    by hand in the dashboard, or whose userName belongs to another identity, is
    skipped with the reason.
    """
    by_id = {user.id: user for user in idp_users}
    stored_users = tuple(stored_users)
    by_external_id = {
        account.external_id: account
        for account in stored_users
        if account.external_id is not None
    }

    found: dict[str, StoredUser] = {}
    found_by_user_name: set[str] = set()
    claimed_by: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for user in by_id.values():
        stored = by_external_id.get(user.id)
        if stored is not None:
            found[user.id] = stored
            claimed_by[stored.id] = user.id

    # Most runs find every account by externalId; only the rest need the index.
    unmatched = sorted(
        (user for user in by_id.values() if user.id not in found),
        key=lambda user: user.id,
    )
    by_user_name = (
        {comparison_key(account.user_name): account for account in stored_users}
        if unmatched
        else {}
    )
    for user in unmatched:
        stored = by_user_name.get(comparison_key(user.user_name))
        if stored is None:
            continue
        if stored.id in claimed_by:
            owner = by_id[claimed_by[stored.id]]
            skipped[user.id] = _claimed_reason(user, stored, owner)
        elif stored.external_id is not None:
            skipped[user.id] = (
                f"userName {user.user_name!r} belongs to another IdP identity "
                f"(externalId {stored.external_id!r}); that account is never "
                "reused for IdP user " + user.id
            )
        else:
            found[user.id] = stored
            found_by_user_name.add(user.id)
            claimed_by[stored.id] = user.id

    accounts: dict[str, StoredUser] = {}
    for idp_id, account in found.items():
        if account.managed_by_idp:
            accounts[idp_id] = account
        else:
            skipped[idp_id] = (
                f"dashboard account {account.user_name!r} was created by hand, so "
                "reconciliation never changes it; an admin must adopt it before "
                "the IdP manages it"
            )
    return UserMatch(
        accounts, frozenset(found_by_user_name), skipped, frozenset(claimed_by)
    )


def _claimed_reason(user: IdpUser, stored: StoredUser, owner: IdpUser) -> str:
    """Explain why an IdP user cannot have the account another one owns."""
    if comparison_key(owner.user_name) != comparison_key(stored.user_name):
        return (
            f"userName {user.user_name!r} is still the userName of dashboard "
            f"account {stored.user_name!r}, which belongs to IdP user {owner.id} "
            f"and is renamed to {owner.user_name!r} by this plan; a later run "
            "creates the account"
        )
    return (
        f"dashboard account {stored.user_name!r} belongs to IdP user {owner.id}, "
        "found by externalId, and an IdP user never gets a second account"
    )
