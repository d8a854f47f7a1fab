"""make_plan, accounts: create, reactivate, profile update, deactivate, skip."""

from __future__ import annotations

from dataclasses import replace

from scim_reconciler.reconcile.model import ChangeKind, ChangeStatus, StoredState
from scim_reconciler.reconcile.plan import make_plan
from tests.reconcile.factories import (
    ADMINS,
    ANALYSTS,
    idp_user,
    in_sync,
    kinds,
    mapping,
    only,
    person_user,
    snapshot,
    stored_group,
    stored_user,
    with_groups,
    with_users,
)

ADA = idp_user(1, "ada@example.com")
BOB = idp_user(2, "bob@example.com")
MAPPINGS = (mapping(1, "Dashboard Admins"), mapping(2, "Analysts", "analytics_admin"))


def synced() -> StoredState:
    """Return the store after a run: Ada and Bob are admins and have accounts."""
    return in_sync(snapshot({ADMINS: [ADA, BOB], ANALYSTS: []}), MAPPINGS)


def test_plan_in_sync_is_empty() -> None:
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: []})

    plan = make_plan(taken, in_sync(taken, MAPPINGS))

    assert plan.changes == ()
    assert plan.skipped == ()
    assert plan.warnings == ()


def test_plan_creates_new_user() -> None:
    cy = idp_user(3, "cy@example.com", status="ACTIVE")
    taken = snapshot({ADMINS: [ADA, BOB, cy], ANALYSTS: []})

    plan = make_plan(taken, synced())

    assert kinds(plan) == [
        (ChangeKind.create, "cy@example.com"),
        (ChangeKind.membership_change, "cy@example.com"),
        (ChangeKind.role_change, "cy@example.com"),
    ]
    create = only(plan, ChangeKind.create)
    assert create.user_id is None
    assert create.expected_version is None
    assert create.external_id == "00u3"
    assert create.status is ChangeStatus.planned
    assert create.details["profile"] == {
        "userName": "cy@example.com",
        "externalId": "00u3",
        "email": "cy@example.com",
        "givenName": "Given",
        "familyName": "Family3",
        "displayName": "Given Family3",
    }
    assert create.details["groups"] == ["Dashboard Admins"]
    assert create.reason == (
        "IdP user 00u3 is active (status ACTIVE) and a member of mapped group "
        "'Dashboard Admins' (00g1; mapping 1 grants Global Administrator), but has "
        "no dashboard account"
    )


def test_plan_create_joins_groups_and_gains_roles() -> None:
    cy = idp_user(3, "cy@example.com")
    taken = snapshot({ADMINS: [ADA, BOB, cy], ANALYSTS: [cy]})

    plan = make_plan(taken, synced())

    membership = only(plan, ChangeKind.membership_change)
    assert membership.user_id is None
    assert membership.details["join"] == [
        {"group_id": "g-00g2", "name": "Analysts", "idp_group_id": "00g2"},
        {"group_id": "g-00g1", "name": "Dashboard Admins", "idp_group_id": "00g1"},
    ]
    assert membership.details["leave"] == []
    assert membership.group_versions == {"g-00g1": 7, "g-00g2": 7}
    roles = only(plan, ChangeKind.role_change)
    assert roles.details["before"] == []
    assert [role["role"] for role in roles.details["after"]] == [
        "analytics_admin",
        "global_admin",
    ]


def test_plan_no_account_for_inactive_idp_user() -> None:
    cy = idp_user(3, "cy@example.com", active=False, status="STAGED")
    taken = snapshot({ADMINS: [ADA, BOB, cy], ANALYSTS: []})

    plan = make_plan(taken, synced())

    assert plan.changes == ()
    assert plan.skipped == ()


def test_plan_reactivates_deactivated_account() -> None:
    """A returning user keeps its account and id; it never gets a new one."""
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: []})
    stored = with_users(synced(), stored_user(BOB, active=False, version=9))

    plan = make_plan(taken, stored)

    assert kinds(plan) == [(ChangeKind.reactivate, "bob@example.com")]
    change = plan.changes[0]
    assert change.user_id == "u-00u2"
    assert change.expected_version == 9
    assert change.details["previous_state"] == "deactivated"
    assert change.details["changed"] == {}
    assert change.details["profile"]["userName"] == "bob@example.com"
    assert "its dashboard account is deactivated" in change.reason
    assert "the same account is reactivated" in change.reason


def test_plan_reactivates_deleted_account_into_groups() -> None:
    """SCIM DELETE keeps the account, hidden and out of its groups."""
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: []})
    stored = with_users(synced(), stored_user(BOB, active=False, deleted=True))
    stored = with_groups(stored, stored_group(ADMINS, ["u-00u1"]))

    plan = make_plan(taken, stored)

    assert kinds(plan) == [
        (ChangeKind.reactivate, "bob@example.com"),
        (ChangeKind.membership_change, "bob@example.com"),
        (ChangeKind.role_change, "bob@example.com"),
    ]
    assert {change.user_id for change in plan.changes} == {"u-00u2"}
    assert plan.changes[0].details["previous_state"] == "deleted"
    assert "its dashboard account is deleted" in plan.changes[0].reason


def test_plan_reactivation_carries_profile_change() -> None:
    taken = snapshot({ADMINS: [ADA, replace(BOB, family_name="Builder")], ANALYSTS: []})
    stored = with_users(synced(), stored_user(BOB, active=False))

    plan = make_plan(taken, stored)

    change = only(plan, ChangeKind.reactivate)
    assert change.details["changed"] == {
        "familyName": {"before": "Family2", "after": "Builder"}
    }
    assert change.details["profile"]["familyName"] == "Builder"
    assert "its profile changes: familyName from 'Family2' to 'Builder'" in (
        change.reason
    )
    assert ChangeKind.profile_update not in {c.kind for c in plan.changes}


def test_plan_finds_account_by_user_name_ignoring_case() -> None:
    """An account pushed without externalId is found by userName and linked."""
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: []})
    stored = with_users(
        synced(), stored_user(BOB, user_name="BOB@example.com", external_id=None)
    )

    plan = make_plan(taken, stored)

    change = only(plan, ChangeKind.profile_update)
    assert change.user_id == "u-00u2"
    assert change.user_name == "BOB@example.com"
    assert change.details["changed"] == {
        "userName": {"before": "BOB@example.com", "after": "bob@example.com"},
        "externalId": {"before": None, "after": "00u2"},
    }
    assert "renamed" not in change.reason
    assert ChangeKind.create not in {c.kind for c in plan.changes}


def test_plan_email_change_updates_same_account() -> None:
    """An email (and userName) change is a rename found by externalId."""
    renamed = replace(
        ADA, user_name="ada.king@example.com", email="ada.king@example.com"
    )
    taken = snapshot({ADMINS: [renamed, BOB], ANALYSTS: []})

    plan = make_plan(taken, synced())

    assert kinds(plan) == [(ChangeKind.profile_update, "ada@example.com")]
    change = plan.changes[0]
    assert change.user_id == "u-00u1"
    assert change.expected_version == 3
    assert change.details["changed"] == {
        "userName": {"before": "ada@example.com", "after": "ada.king@example.com"},
        "email": {"before": "ada@example.com", "after": "ada.king@example.com"},
    }
    assert change.reason == (
        "the IdP's profile of user 00u1 differs: userName from 'ada@example.com' "
        "to 'ada.king@example.com', email from 'ada@example.com' to "
        "'ada.king@example.com' (the account was found by externalId, so it is "
        "renamed)"
    )


def test_plan_email_case_is_no_change() -> None:
    """The store keeps emails case-folded, so case alone is no difference."""
    taken = snapshot(
        {ADMINS: [replace(ADA, email="Ada@Example.COM"), BOB], ANALYSTS: []}
    )

    assert make_plan(taken, synced()).changes == ()


def test_plan_user_name_case_is_updated() -> None:
    taken = snapshot(
        {ADMINS: [replace(ADA, user_name="Ada@example.com"), BOB], ANALYSTS: []}
    )

    plan = make_plan(taken, synced())

    change = only(plan, ChangeKind.profile_update)
    assert change.details["changed"] == {
        "userName": {"before": "ada@example.com", "after": "Ada@example.com"}
    }


def test_plan_unreported_attribute_keeps_value() -> None:
    """An IdP that does not return a field (None) does not clear it."""
    sparse = replace(ADA, email=None, given_name=None, display_name=None)
    taken = snapshot({ADMINS: [sparse, BOB], ANALYSTS: []})

    assert make_plan(taken, synced()).changes == ()


def test_plan_profile_update_keeps_unreported_values() -> None:
    taken = snapshot(
        {ADMINS: [replace(ADA, email=None, family_name="King"), BOB], ANALYSTS: []}
    )

    change = only(make_plan(taken, synced()), ChangeKind.profile_update)

    assert change.details["profile"]["email"] == "ada@example.com"
    assert change.details["profile"]["familyName"] == "King"
    assert list(change.details["changed"]) == ["familyName"]


def test_plan_deactivates_user_inactive_in_idp() -> None:
    suspended = replace(BOB, active=False, status="SUSPENDED")
    taken = snapshot({ADMINS: [ADA, suspended], ANALYSTS: []})

    plan = make_plan(taken, synced())

    assert kinds(plan) == [(ChangeKind.deactivate, "bob@example.com")]
    change = plan.changes[0]
    assert change.user_id == "u-00u2"
    assert change.expected_version == 3
    assert change.details == {"cause": "idp_inactive", "idp_status": "SUSPENDED"}
    assert change.reason == "IdP user 00u2 is deactivated in the IdP (status SUSPENDED)"


def test_plan_deactivation_without_idp_status() -> None:
    taken = snapshot({ADMINS: [ADA, replace(BOB, active=False)], ANALYSTS: []})

    change = only(make_plan(taken, synced()), ChangeKind.deactivate)

    assert change.reason == "IdP user 00u2 is deactivated in the IdP (active is false)"


def test_plan_inactive_idp_user_keeps_inactive_account() -> None:
    taken = snapshot({ADMINS: [ADA, replace(BOB, active=False)], ANALYSTS: []})
    stored = with_users(synced(), stored_user(BOB, active=False))

    assert make_plan(taken, stored).changes == ()


def test_plan_deactivates_user_in_no_mapped_group() -> None:
    taken = snapshot({ADMINS: [ADA], ANALYSTS: []})

    plan = make_plan(taken, synced())

    assert kinds(plan) == [
        (ChangeKind.deactivate, "bob@example.com"),
        (ChangeKind.membership_change, "bob@example.com"),
        (ChangeKind.role_change, "bob@example.com"),
    ]
    deactivate = plan.changes[0]
    assert deactivate.details == {
        "cause": "no_mapped_group",
        "idp_status": None,
        "left": ["Dashboard Admins"],
    }
    assert deactivate.reason == (
        "no mapped group of the IdP lists this user (externalId 00u2); the user "
        "left 'Dashboard Admins'"
    )
    membership = plan.changes[1]
    assert membership.details["leave"] == [
        {"group_id": "g-00g1", "name": "Dashboard Admins", "idp_group_id": "00g1"}
    ]
    assert membership.reason == (
        "leaves 'Dashboard Admins' because IdP group 'Dashboard Admins' no longer "
        "lists the user"
    )
    assert plan.changes[2].details["after"] == []


def test_plan_deactivates_account_never_in_group() -> None:
    """An account pushed for an app assignment but in no mapped group."""
    stray = stored_user(idp_user(7, "stray@example.com"))
    stored = with_users(synced(), stray)

    plan = make_plan(snapshot({ADMINS: [ADA, BOB], ANALYSTS: []}), stored)

    change = only(plan, ChangeKind.deactivate)
    assert change.user_id == "u-00u7"
    assert change.reason == (
        "no mapped group of the IdP lists this user (externalId 00u7), and the "
        "store had it in no mapped group either"
    )
    assert change.details["left"] == []


def test_plan_inactive_account_only_leaves_groups() -> None:
    stored = with_users(synced(), stored_user(BOB, active=False))

    plan = make_plan(snapshot({ADMINS: [ADA], ANALYSTS: []}), stored)

    assert kinds(plan) == [
        (ChangeKind.membership_change, "bob@example.com"),
        (ChangeKind.role_change, "bob@example.com"),
    ]


def test_plan_never_touches_person_accounts() -> None:
    """Break-glass admins created by hand are never deactivated or changed."""
    glass = person_user("p-1", "breakglass@example.com")
    stored = with_users(synced(), glass)
    stored = with_groups(stored, stored_group(ADMINS, ["u-00u1", "u-00u2", "p-1"]))

    plan = make_plan(snapshot({ADMINS: [ADA, BOB], ANALYSTS: []}), stored)

    assert plan.changes == ()


def test_plan_skips_idp_user_with_person_account() -> None:
    glass = person_user("p-1", "breakglass@example.com")
    idp_glass = idp_user(5, "BreakGlass@example.com", active=False)
    stored = with_users(synced(), glass)

    plan = make_plan(snapshot({ADMINS: [ADA, BOB, idp_glass], ANALYSTS: []}), stored)

    assert plan.changes == ()
    assert plan.skipped == (
        (
            "BreakGlass@example.com",
            "dashboard account 'breakglass@example.com' was created by hand, so "
            "reconciliation never changes it; an admin must adopt it before the "
            "IdP manages it",
        ),
    )


def test_plan_skips_user_name_of_other_identity() -> None:
    """A userName held by another externalId is never reused: no second account."""
    old = stored_user(idp_user(8, "cy@example.com"), external_id="00uOLD")
    newcomer = idp_user(3, "cy@example.com")
    stored = with_users(synced(), old)

    plan = make_plan(snapshot({ADMINS: [ADA, BOB, newcomer], ANALYSTS: []}), stored)

    assert ChangeKind.create not in {change.kind for change in plan.changes}
    assert plan.skipped == (
        (
            "cy@example.com",
            "userName 'cy@example.com' belongs to another IdP identity (externalId "
            "'00uOLD'); that account is never reused for IdP user 00u3",
        ),
    )
    assert only(plan, ChangeKind.deactivate).user_id == "u-00u8"


def test_plan_one_account_for_equal_user_names() -> None:
    """Of two IdP users whose userNames differ only in case, the lower id wins."""
    first = idp_user(3, "cy@example.com")
    second = idp_user(4, "CY@example.com")

    plan = make_plan(
        snapshot({ADMINS: [ADA, BOB, second, first], ANALYSTS: []}), synced()
    )

    assert only(plan, ChangeKind.create).external_id == "00u3"
    assert plan.skipped == (
        (
            "CY@example.com",
            "userName 'CY@example.com' is also the userName of IdP user 00u3, which "
            "this plan creates first",
        ),
    )


def test_plan_rename_waits_for_held_user_name() -> None:
    """A rename onto another account's userName keeps the old userName for now."""
    holder = stored_user(idp_user(9, "ada.king@example.com"), managed_by_idp=False)
    renamed = replace(ADA, user_name="ada.king@example.com", family_name="King")
    stored = with_users(synced(), holder)

    plan = make_plan(snapshot({ADMINS: [renamed, BOB], ANALYSTS: []}), stored)

    change = only(plan, ChangeKind.profile_update)
    assert change.details["profile"]["userName"] == "ada@example.com"
    assert list(change.details["changed"]) == ["familyName"]
    assert plan.warnings == (
        "dashboard account 'ada@example.com' (IdP user 00u1) keeps its userName: "
        "the IdP's userName 'ada.king@example.com' is still held by account "
        "'ada.king@example.com' (u-00u9); it is renamed once that account gives "
        "the userName up",
    )


def test_plan_create_waits_for_rename_away() -> None:
    """Bob's old userName goes to a new user only after Bob's rename applies."""
    bob_renamed = replace(BOB, user_name="robert@example.com")
    newcomer = idp_user(3, "bob@example.com")

    plan = make_plan(
        snapshot({ADMINS: [ADA, bob_renamed, newcomer], ANALYSTS: []}), synced()
    )

    assert kinds(plan) == [(ChangeKind.profile_update, "bob@example.com")]
    assert plan.skipped == (
        (
            "bob@example.com",
            "userName 'bob@example.com' is still the userName of dashboard account "
            "'bob@example.com', which belongs to IdP user 00u2 and is renamed to "
            "'robert@example.com' by this plan; a later run creates the account",
        ),
    )


def test_plan_create_never_takes_renamed_user_name() -> None:
    ada_renamed = replace(ADA, user_name="cy@example.com")
    newcomer = idp_user(3, "CY@example.com")

    plan = make_plan(
        snapshot({ADMINS: [ada_renamed, BOB, newcomer], ANALYSTS: []}), synced()
    )

    assert ChangeKind.create not in {change.kind for change in plan.changes}
    assert plan.skipped[0][0] == "CY@example.com"
    assert "new userName of an existing dashboard account" in plan.skipped[0][1]


def test_plan_changes_carry_idp_external_id() -> None:
    stored = with_users(synced(), stored_user(BOB, external_id=None))

    change = only(
        make_plan(snapshot({ADMINS: [ADA, BOB], ANALYSTS: []}), stored),
        ChangeKind.profile_update,
    )

    assert change.external_id == "00u2"
