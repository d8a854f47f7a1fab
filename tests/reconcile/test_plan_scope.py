"""make_plan: order, on-demand scope, missing mappings and plan warnings."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from scim_reconciler.errors import ConflictError, NotFoundError
from scim_reconciler.reconcile.model import ChangeKind, StoredState
from scim_reconciler.reconcile.plan import NO_MAPPINGS_WARNING, make_plan
from tests.reconcile.factories import (
    ADMINS,
    ANALYSTS,
    idp_user,
    in_sync,
    kinds,
    mapping,
    snapshot,
    stored_user,
    with_users,
)

ADA = idp_user(1, "ada@example.com")
BOB = idp_user(2, "bob@example.com")
CY = idp_user(3, "Cy@example.com")
DEE = idp_user(4, "dee@example.com")
MAPPINGS = (mapping(1, "Dashboard Admins"), mapping(2, "Analysts", "analytics_admin"))


def synced() -> StoredState:
    """Return the store after a run: Ada and Bob admins, Dee an analyst."""
    return in_sync(snapshot({ADMINS: [ADA, BOB], ANALYSTS: [DEE]}), MAPPINGS)


def test_plan_without_mappings_plans_nothing() -> None:
    """With no mapping every user would look unlisted; plan nothing instead."""
    stored = replace(synced(), mappings=())

    plan = make_plan(snapshot({}), stored)

    assert plan.changes == ()
    assert plan.warnings == (NO_MAPPINGS_WARNING,)


def test_plan_mapping_missing_from_snapshot() -> None:
    stored = replace(synced(), mappings=(*MAPPINGS, mapping(3, "Course Authors")))

    with pytest.raises(ConflictError) as raised:
        make_plan(snapshot({ADMINS: [ADA, BOB], ANALYSTS: [DEE]}), stored)

    assert "mapping 3 names group 'Course Authors'" in str(raised.value)


def test_plan_mapping_found_ignoring_case() -> None:
    stored = replace(synced(), mappings=(mapping(1, "dashboard admins"), MAPPINGS[1]))

    plan = make_plan(snapshot({ADMINS: [ADA, BOB], ANALYSTS: [DEE]}), stored)

    assert plan.changes == ()


def test_plan_orders_users_by_user_name() -> None:
    taken = snapshot({ADMINS: [ADA, CY], ANALYSTS: []})

    plan = make_plan(taken, synced())

    assert kinds(plan) == [
        (ChangeKind.deactivate, "bob@example.com"),
        (ChangeKind.membership_change, "bob@example.com"),
        (ChangeKind.role_change, "bob@example.com"),
        (ChangeKind.create, "Cy@example.com"),
        (ChangeKind.membership_change, "Cy@example.com"),
        (ChangeKind.role_change, "Cy@example.com"),
        (ChangeKind.deactivate, "dee@example.com"),
        (ChangeKind.membership_change, "dee@example.com"),
        (ChangeKind.role_change, "dee@example.com"),
    ]


def test_plan_ignores_input_order() -> None:
    """The same snapshot and store, listed in another order, plan the same."""
    users = [idp_user(number) for number in range(10, 40)]
    taken = snapshot({ADMINS: users[:20], ANALYSTS: users[15:]})
    stored = in_sync(snapshot({ADMINS: users[5:25], ANALYSTS: users[:10]}), MAPPINGS)
    shuffler = random.Random(7)
    shuffled_users = list(taken.users.items())
    shuffler.shuffle(shuffled_users)
    shuffled_stored = list(stored.users)
    shuffler.shuffle(shuffled_stored)

    first = make_plan(taken, stored)
    second = make_plan(
        replace(taken, users=dict(shuffled_users), groups=taken.groups[::-1]),
        replace(stored, users=tuple(shuffled_stored), groups=stored.groups[::-1]),
    )

    assert first == second
    assert len(first.changes) > 20


def test_plan_only_user_by_user_name() -> None:
    taken = snapshot({ADMINS: [ADA, CY], ANALYSTS: []})

    plan = make_plan(taken, synced(), only_user="CY@EXAMPLE.COM")

    assert {user_name for _kind, user_name in kinds(plan)} == {"Cy@example.com"}
    assert len(plan.changes) == 3


@pytest.mark.parametrize("reference", ["00u2", "u-00u2", "bob@example.com"])
def test_plan_only_user_keeps_deactivation(reference: str) -> None:
    """The snapshot is complete, so a one-user run still detects that Bob left."""
    taken = snapshot({ADMINS: [ADA, CY], ANALYSTS: []})

    plan = make_plan(taken, synced(), only_user=reference)

    assert kinds(plan) == [
        (ChangeKind.deactivate, "bob@example.com"),
        (ChangeKind.membership_change, "bob@example.com"),
        (ChangeKind.role_change, "bob@example.com"),
    ]


def test_plan_only_user_in_sync_is_empty() -> None:
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: [DEE]})

    plan = make_plan(taken, synced(), only_user="ada@example.com")

    assert plan.changes == ()


def test_plan_only_user_unknown() -> None:
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: [DEE]})

    with pytest.raises(NotFoundError) as raised:
        make_plan(taken, synced(), only_user="zed@example.com")

    assert "user 'zed@example.com' is neither in a mapped group" in str(raised.value)


def test_plan_only_user_skipped_is_listed() -> None:
    old = stored_user(idp_user(8, "Cy@example.com"), external_id="00uOLD")
    taken = snapshot({ADMINS: [ADA, BOB, CY], ANALYSTS: [DEE]})

    plan = make_plan(taken, with_users(synced(), old), only_user="00u3")

    assert plan.changes == ()
    assert [user_name for user_name, _reason in plan.skipped] == ["Cy@example.com"]


def test_plan_only_group_members_and_leavers() -> None:
    """A one-group run plans for its members and for those who left it."""
    taken = snapshot({ADMINS: [ADA, CY], ANALYSTS: []})

    plan = make_plan(taken, synced(), only_group="Dashboard Admins")

    assert {user_name for _kind, user_name in kinds(plan)} == {
        "bob@example.com",
        "Cy@example.com",
    }


@pytest.mark.parametrize("reference", ["00g2", "analysts", "Analysts"])
def test_plan_only_group_by_id_or_name(reference: str) -> None:
    taken = snapshot({ADMINS: [ADA, CY], ANALYSTS: []})

    plan = make_plan(taken, synced(), only_group=reference)

    assert {user_name for _kind, user_name in kinds(plan)} == {"dee@example.com"}


def test_plan_only_group_unknown() -> None:
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: [DEE]})

    with pytest.raises(NotFoundError) as raised:
        make_plan(taken, synced(), only_group="Course Authors")

    assert str(raised.value) == (
        "group 'Course Authors' is not a mapped group: the mapped groups are "
        "'Dashboard Admins', 'Analysts'"
    )


def test_plan_only_user_and_group() -> None:
    taken = snapshot({ADMINS: [ADA, CY], ANALYSTS: []})

    plan = make_plan(taken, synced(), only_user="dee@example.com", only_group="00g2")

    assert {user_name for _kind, user_name in kinds(plan)} == {"dee@example.com"}
    with pytest.raises(NotFoundError, match="among the members of group '00g1'"):
        make_plan(taken, synced(), only_user="dee@example.com", only_group="00g1")


def test_plan_warns_about_skipped_members() -> None:
    taken = snapshot(
        {ADMINS: [ADA, BOB], ANALYSTS: [DEE]},
        skipped_member_types={"device": 2, "servicePrincipal": 1},
    )

    plan = make_plan(taken, synced())

    assert plan.changes == ()
    assert plan.warnings == (
        "3 members of mapped groups are not users (2 device, 1 servicePrincipal) "
        "and were skipped",
    )


def test_plan_warns_about_unflattened_nesting() -> None:
    """Nested groups skipped without flattening are reported in a warning."""
    taken = snapshot(
        {ADMINS: [ADA, BOB], ANALYSTS: [DEE]},
        skipped_member_types={"group": 1},
        flattened=False,
    )

    plan = make_plan(taken, synced())

    assert plan.warnings == (
        "1 member of a mapped group is not a user (1 group) and was skipped; "
        "this connector does not flatten nested groups, so a user who is in a "
        "mapped group only through a nested group counts as not in it: map the "
        "nested groups too",
    )
