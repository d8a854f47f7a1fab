"""apply_guards: suspect empty groups and the deactivation limits."""

from __future__ import annotations

from dataclasses import replace

from scim_reconciler.reconcile.guards import NO_TOKEN_WARNING, apply_guards
from scim_reconciler.reconcile.model import (
    ChangeKind,
    ChangeStatus,
    IdpUser,
    Plan,
    Policy,
    Snapshot,
    StoredState,
)
from scim_reconciler.reconcile.plan import make_plan
from tests.reconcile.factories import (
    ADMINS,
    ANALYSTS,
    idp_user,
    in_sync,
    mapping,
    person_user,
    snapshot,
    stored_user,
    with_users,
)

MAPPINGS = (mapping(1, "Dashboard Admins"), mapping(2, "Analysts", "analytics_admin"))
ADMIN_USERS = [idp_user(number) for number in range(1, 6)]
ANALYST_USERS = [idp_user(number) for number in range(11, 31)]
# Limits that nothing in these tests reaches, unless a test lowers them.
NO_LIMIT = Policy(max_deactivations=1000, max_deactivation_percent=100.0)


def synced() -> StoredState:
    """Return the store after a run: 5 admins and 20 analysts."""
    return in_sync(snapshot({ADMINS: ADMIN_USERS, ANALYSTS: ANALYST_USERS}), MAPPINGS)


def guarded(
    taken: Snapshot,
    stored: StoredState,
    policy: Policy = NO_LIMIT,
    *,
    can_apply: bool = True,
) -> Plan:
    return apply_guards(
        make_plan(taken, stored), taken, stored, policy, can_apply=can_apply
    )


def statuses(plan: Plan) -> dict[tuple[ChangeKind, str], ChangeStatus]:
    return {(change.kind, change.user_name): change.status for change in plan.changes}


def test_guards_leave_normal_plan_alone() -> None:
    newcomer = idp_user(99)
    taken = snapshot({ADMINS: [*ADMIN_USERS, newcomer], ANALYSTS: ANALYST_USERS[1:]})

    plan = guarded(taken, synced(), Policy())

    assert plan == make_plan(taken, synced())
    assert {change.status for change in plan.changes} == {ChangeStatus.planned}


def test_guards_hold_removals_from_empty_group() -> None:
    """An empty list from the IdP must not deprovision everyone."""
    newcomer = idp_user(99)
    taken = snapshot({ADMINS: [*ADMIN_USERS, newcomer], ANALYSTS: []})

    plan = guarded(taken, synced())

    held = [change for change in plan.changes if change.status is ChangeStatus.held]
    assert {change.kind for change in held} == {
        ChangeKind.deactivate,
        ChangeKind.membership_change,
        ChangeKind.role_change,
    }
    assert {change.user_name for change in held} == {
        user.user_name for user in ANALYST_USERS
    }
    assert len(held) == 60
    assert held[0].hold_reason == (
        "IdP group 'Analysts' (00g2) came back empty, but its stored group "
        "'Analysts' has 20 members; an empty answer can be an IdP error, so "
        "removals from it wait for an admin's approval"
    )
    planned = [c for c in plan.changes if c.status is ChangeStatus.planned]
    assert {change.user_name for change in planned} == {"user99@example.com"}
    assert plan.warnings[-1].endswith("(20 held)")


def test_guards_hold_whole_membership_change() -> None:
    """A membership change that leaves a suspect group is held with its joins."""
    mover = ANALYST_USERS[0]
    taken = snapshot({ADMINS: [*ADMIN_USERS, mover], ANALYSTS: []})

    plan = guarded(taken, synced())

    assert statuses(plan)[(ChangeKind.membership_change, mover.user_name)] is (
        ChangeStatus.held
    )
    assert (ChangeKind.deactivate, mover.user_name) not in statuses(plan)


def test_guards_keep_idp_deactivation_in_empty_group() -> None:
    """A deactivation the IdP status causes is not caused by the empty group."""
    suspended = replace(ADMIN_USERS[0], active=False, status="SUSPENDED")
    taken = snapshot({ADMINS: [suspended, *ADMIN_USERS[1:]], ANALYSTS: []})

    plan = guarded(taken, synced())

    assert statuses(plan)[(ChangeKind.deactivate, "user1@example.com")] is (
        ChangeStatus.planned
    )


def test_guards_ignore_group_that_was_empty() -> None:
    stored = in_sync(snapshot({ADMINS: ADMIN_USERS, ANALYSTS: []}), MAPPINGS)
    leaver = ADMIN_USERS[0]

    plan = guarded(snapshot({ADMINS: ADMIN_USERS[1:], ANALYSTS: []}), stored)

    assert statuses(plan)[(ChangeKind.deactivate, leaver.user_name)] is (
        ChangeStatus.planned
    )


def test_guards_empty_group_check_can_be_off() -> None:
    policy = replace(NO_LIMIT, hold_empty_groups=False)

    plan = guarded(snapshot({ADMINS: ADMIN_USERS, ANALYSTS: []}), synced(), policy)

    assert len(plan.changes) == 60
    assert {change.status for change in plan.changes} == {ChangeStatus.planned}


def test_guards_hold_deactivations_over_count() -> None:
    leavers = ANALYST_USERS[:3]
    newcomer = idp_user(99)
    taken = snapshot({ADMINS: [*ADMIN_USERS, newcomer], ANALYSTS: ANALYST_USERS[3:]})
    policy = Policy(max_deactivations=2, max_deactivation_percent=100.0)

    plan = guarded(taken, synced(), policy)

    held = [change for change in plan.changes if change.status is ChangeStatus.held]
    assert {change.user_name for change in held} == {u.user_name for u in leavers}
    assert len(held) == 9
    assert held[0].hold_reason == (
        "this run would deactivate 3 users, more than the limit of 2 per run; the "
        "deactivations wait for an admin's approval while the other changes apply"
    )
    assert plan.warnings[-1] == held[0].hold_reason
    planned = {c.user_name for c in plan.changes if c.status is ChangeStatus.planned}
    assert planned == {"user99@example.com"}


def test_guards_reason_singular_for_one() -> None:
    taken = snapshot({ADMINS: ADMIN_USERS, ANALYSTS: ANALYST_USERS[1:]})
    policy = Policy(max_deactivations=0, max_deactivation_percent=100.0)

    plan = guarded(taken, synced(), policy)

    held = [change for change in plan.changes if change.status is ChangeStatus.held]
    assert held
    assert held[0].hold_reason.startswith(
        "this run would deactivate 1 user, more than the limit of 0 per run"
    )


def test_guards_allow_deactivations_at_limit() -> None:
    taken = snapshot({ADMINS: ADMIN_USERS, ANALYSTS: ANALYST_USERS[2:]})
    policy = Policy(max_deactivations=2, max_deactivation_percent=100.0)

    plan = guarded(taken, synced(), policy)

    assert len(plan.changes) == 6
    assert {change.status for change in plan.changes} == {ChangeStatus.planned}


def test_guards_hold_deactivations_over_percent() -> None:
    """3 of 25 active IdP-managed users is 12%, above a 10% limit."""
    taken = snapshot({ADMINS: ADMIN_USERS, ANALYSTS: ANALYST_USERS[3:]})
    policy = Policy(max_deactivations=100, max_deactivation_percent=10.0)

    plan = guarded(taken, synced(), policy)

    assert {change.status for change in plan.changes} == {ChangeStatus.held}
    assert plan.changes[0].hold_reason == (
        "this run would deactivate 3 users, 12.0% of the 25 active IdP-managed "
        "users, more than the limit of 10%; the deactivations wait for an admin's "
        "approval while the other changes apply"
    )


def test_guards_allow_deactivations_under_percent() -> None:
    """2 of 25 is 8%, within a 10% limit."""
    taken = snapshot({ADMINS: ADMIN_USERS, ANALYSTS: ANALYST_USERS[2:]})
    policy = Policy(max_deactivations=100, max_deactivation_percent=10.0)

    plan = guarded(taken, synced(), policy)

    assert {change.status for change in plan.changes} == {ChangeStatus.planned}


def test_guards_percent_counts_only_active_idp_users() -> None:
    """Inactive and hand-made accounts are not part of the percent base."""
    extra = [person_user(f"p-{n}", f"person{n}@example.com") for n in range(50)]
    dormant = [stored_user(idp_user(200 + n), active=False) for n in range(50)]
    stored = with_users(synced(), *extra, *dormant)
    taken = snapshot({ADMINS: ADMIN_USERS, ANALYSTS: ANALYST_USERS[3:]})
    policy = Policy(max_deactivations=100, max_deactivation_percent=10.0)

    plan = guarded(taken, stored, policy)

    held = {c.user_name for c in plan.changes if c.status is ChangeStatus.held}
    assert held == {user.user_name for user in ANALYST_USERS[:3]}


def test_guards_count_after_empty_group_holds() -> None:
    """Deactivations held as suspect do not count toward the limit again."""
    leaver = ADMIN_USERS[0]
    taken = snapshot({ADMINS: ADMIN_USERS[1:], ANALYSTS: []})
    policy = Policy(max_deactivations=1, max_deactivation_percent=100.0)

    plan = guarded(taken, synced(), policy)

    assert statuses(plan)[(ChangeKind.deactivate, leaver.user_name)] is (
        ChangeStatus.planned
    )


def test_guards_warn_without_token() -> None:
    """Without a valid SCIM token the caller pauses the run; the plan shows why."""
    taken = snapshot({ADMINS: [*ADMIN_USERS, idp_user(99)], ANALYSTS: ANALYST_USERS})

    plan = guarded(taken, synced(), can_apply=False)

    assert plan.warnings == (NO_TOKEN_WARNING,)
    assert {change.status for change in plan.changes} == {ChangeStatus.planned}


def test_guards_keep_plan_warnings_and_skips() -> None:
    glass = person_user("p-1", "user3@example.com")
    stored = with_users(synced(), glass)
    stored = replace(stored, users=tuple(u for u in stored.users if u.id != "u-00u3"))
    taken = snapshot(
        {ADMINS: ADMIN_USERS, ANALYSTS: ANALYST_USERS},
        skipped_member_types={"device": 2},
    )
    plan = make_plan(taken, stored)

    result = apply_guards(plan, taken, stored, NO_LIMIT, can_apply=True)

    assert result.skipped == plan.skipped
    assert len(result.skipped) == 1
    assert result.warnings == plan.warnings


def test_guards_without_mappings() -> None:
    stored = replace(synced(), mappings=())
    taken = snapshot({})

    plan = guarded(taken, stored, Policy())

    assert plan.changes == ()


def test_guards_leave_create_with_same_idp_user() -> None:
    """Holds follow users by account id, or by IdP id for new users."""
    newcomer: IdpUser = idp_user(99)
    taken = snapshot({ADMINS: [*ADMIN_USERS, newcomer], ANALYSTS: []})

    plan = guarded(taken, synced())

    new_changes = [c for c in plan.changes if c.external_id == "00u99"]
    assert len(new_changes) == 3
    assert {change.status for change in new_changes} == {ChangeStatus.planned}
