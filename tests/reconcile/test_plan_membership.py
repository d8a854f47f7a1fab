"""make_plan, membership and roles: mirrored groups, joins, leaves, role merges."""

from __future__ import annotations

from dataclasses import replace

from scim_reconciler.reconcile.model import ChangeKind, StoredState
from scim_reconciler.reconcile.plan import make_plan
from tests.reconcile.factories import (
    ADMINS,
    ANALYSTS,
    AUTHORS,
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
    """Return the store after a run: both admins, and Bob also an analyst."""
    return in_sync(snapshot({ADMINS: [ADA, BOB], ANALYSTS: [BOB]}), MAPPINGS)


def test_plan_joins_existing_group() -> None:
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: [ADA, BOB]})

    plan = make_plan(taken, synced())

    assert kinds(plan) == [
        (ChangeKind.membership_change, "ada@example.com"),
        (ChangeKind.role_change, "ada@example.com"),
    ]
    membership = plan.changes[0]
    assert membership.user_id == "u-00u1"
    assert membership.expected_version == 3
    assert membership.group_versions == {"g-00g2": 7}
    assert membership.details == {
        "join": [{"group_id": "g-00g2", "name": "Analysts", "idp_group_id": "00g2"}],
        "leave": [],
        "joined": ["Analysts"],
        "left": [],
    }
    assert membership.reason == (
        "joins 'Analysts' because IdP group 'Analysts' lists the user"
    )


def test_plan_role_change_before_and_after() -> None:
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: [ADA, BOB]})

    change = only(make_plan(taken, synced()), ChangeKind.role_change)

    assert change.user_id == "u-00u1"
    assert change.expected_version == 3
    assert change.group_versions == {}
    assert change.details == {
        "before": [
            {
                "role": "global_admin",
                "name": "Global Administrator",
                "grant": "full",
                "object_ids": [],
            }
        ],
        "after": [
            {
                "role": "analytics_admin",
                "name": "Analytics Admin",
                "grant": "full",
                "object_ids": [],
            },
            {
                "role": "global_admin",
                "name": "Global Administrator",
                "grant": "full",
                "object_ids": [],
            },
        ],
    }
    assert change.reason == (
        "effective roles follow the membership change: gains Analytics Admin in "
        "full through mapping 2"
    )


def test_plan_leaves_group_and_loses_role() -> None:
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: []})

    plan = make_plan(taken, synced())

    assert kinds(plan) == [
        (ChangeKind.membership_change, "bob@example.com"),
        (ChangeKind.role_change, "bob@example.com"),
    ]
    assert plan.changes[0].details["leave"] == [
        {"group_id": "g-00g2", "name": "Analysts", "idp_group_id": "00g2"}
    ]
    assert plan.changes[0].details["left"] == ["Analysts"]
    assert plan.changes[1].reason == (
        "effective roles follow the membership change: loses Analytics Admin"
    )


def test_plan_no_role_change_when_roles_stay() -> None:
    """Leaving one of two groups that grant the same role changes no role."""
    mappings = (*MAPPINGS, mapping(3, "Course Authors", "global_admin"))
    stored = in_sync(snapshot({ADMINS: [ADA], ANALYSTS: [], AUTHORS: [ADA]}), mappings)

    plan = make_plan(snapshot({ADMINS: [ADA], ANALYSTS: [], AUTHORS: []}), stored)

    assert kinds(plan) == [(ChangeKind.membership_change, "ada@example.com")]


def test_plan_full_grant_absorbs_limited() -> None:
    mappings = (
        mapping(1, "Dashboard Admins", "course_management_admin"),
        mapping(2, "Analysts", "course_management_admin", limited_to=["c1"]),
    )
    stored = in_sync(snapshot({ADMINS: [], ANALYSTS: [ADA]}), mappings)

    plan = make_plan(snapshot({ADMINS: [ADA], ANALYSTS: [ADA]}), stored)

    change = only(plan, ChangeKind.role_change)
    assert change.details["before"][0]["grant"] == "limited"
    assert change.details["after"] == [
        {
            "role": "course_management_admin",
            "name": "Course Management Admin",
            "grant": "full",
            "object_ids": [],
        }
    ]
    assert change.reason == (
        "effective roles follow the membership change: Course Management Admin "
        "changes from limited to c1 to in full"
    )


def test_plan_limited_grants_unite() -> None:
    mappings = (
        mapping(1, "Dashboard Admins", "course_management_admin", limited_to=["c2"]),
        mapping(2, "Analysts", "course_management_admin", limited_to=["c1", "c3"]),
    )
    stored = in_sync(snapshot({ADMINS: [], ANALYSTS: [ADA]}), mappings)

    plan = make_plan(snapshot({ADMINS: [ADA], ANALYSTS: [ADA]}), stored)

    after = only(plan, ChangeKind.role_change).details["after"]
    assert after == [
        {
            "role": "course_management_admin",
            "name": "Course Management Admin",
            "grant": "limited",
            "object_ids": ["c1", "c2", "c3"],
        }
    ]


def test_plan_creates_missing_mapped_group() -> None:
    """A mapped group the store does not have yet is created by apply."""
    mappings = (*MAPPINGS, mapping(3, "00g3", "course_management_admin"))
    taken = snapshot(
        {ADMINS: [ADA, BOB], ANALYSTS: [BOB], AUTHORS: [ADA]},
        references={AUTHORS: "00g3"},
    )

    plan = make_plan(taken, replace(synced(), mappings=mappings))

    membership = only(plan, ChangeKind.membership_change)
    assert membership.details["join"] == [
        {"group_id": None, "name": "Course Authors", "idp_group_id": "00g3"}
    ]
    assert membership.group_versions == {}
    assert membership.reason == (
        "joins 'Course Authors' (a new stored group) because IdP group 'Course "
        "Authors' lists the user"
    )
    assert only(plan, ChangeKind.role_change).details["after"][0]["role"] == (
        "course_management_admin"
    )
    assert plan.warnings == ()


def test_plan_mirrors_group_pushed_without_external_id() -> None:
    """Okta pushes groups without externalId; the name mapping finds them."""
    pushed = stored_group(ADMINS, ["u-00u1"], id="pushed", external_id=None)
    stored = replace(synced(), groups=(pushed, stored_group(ANALYSTS, ["u-00u2"])))

    plan = make_plan(snapshot({ADMINS: [ADA, BOB], ANALYSTS: [BOB]}), stored)

    membership = only(plan, ChangeKind.membership_change)
    assert membership.details["join"] == [
        {"group_id": "pushed", "name": "Dashboard Admins", "idp_group_id": "00g1"}
    ]
    assert plan.warnings == ()


def test_plan_warns_when_id_mapping_misses_group() -> None:
    """A mapping by IdP id cannot grant through a group stored without that id."""
    pushed = stored_group(ADMINS, ["u-00u1", "u-00u2"], id="pushed", external_id=None)
    stored = replace(
        synced(),
        groups=(pushed, stored_group(ANALYSTS, ["u-00u2"])),
        mappings=(mapping(1, "00g1"), MAPPINGS[1]),
    )
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: [BOB]}, references={ADMINS: "00g1"})

    plan = make_plan(taken, stored)

    assert plan.changes == ()
    assert plan.warnings == (
        "mapping 1 names group '00g1', which the IdP resolves to 'Dashboard "
        "Admins' (00g1), but no stored group mirroring it ('Dashboard Admins') has "
        "that name or externalId, so the mapping grants no role: map the group by "
        "the stored group's name or externalId",
    )


def test_plan_warns_when_group_name_is_taken() -> None:
    other = stored_group(ADMINS, ["u-00u1"], id="other", external_id="00gOTHER")
    stored = replace(
        synced(),
        groups=(other, stored_group(ANALYSTS, ["u-00u2"])),
        mappings=(mapping(1, "00g1"), MAPPINGS[1]),
    )
    taken = snapshot({ADMINS: [ADA, BOB], ANALYSTS: [BOB]}, references={ADMINS: "00g1"})

    plan = make_plan(taken, stored)

    assert ChangeKind.membership_change not in {c.kind for c in plan.changes}
    assert ChangeKind.deactivate not in {c.kind for c in plan.changes}
    assert plan.warnings == (
        "IdP group 'Dashboard Admins' (00g1) has no stored group, and none can be "
        "created because stored group 'Dashboard Admins' already has that name with "
        "externalId '00gOTHER'; its members get no stored membership or role from "
        "it until that group is renamed or removed",
    )


def test_plan_mapping_by_name_and_id_share_group() -> None:
    """Two mappings naming one IdP group, by id and by name, grant both roles."""
    mappings = (mapping(1, "Dashboard Admins"), mapping(2, "00g1", "analytics_admin"))
    taken = snapshot({ADMINS: [ADA]})
    taken = replace(
        taken,
        groups=(
            taken.groups[0],
            replace(taken.groups[0], reference="00g1"),
        ),
    )
    stored = StoredState((), (), mappings, {})

    plan = make_plan(taken, stored)

    membership = only(plan, ChangeKind.membership_change)
    assert membership.details["join"] == [
        {"group_id": None, "name": "Dashboard Admins", "idp_group_id": "00g1"}
    ]
    roles = only(plan, ChangeKind.role_change).details["after"]
    assert [role["role"] for role in roles] == ["analytics_admin", "global_admin"]
    assert roles[0]["name"] == "analytics_admin"


def test_plan_leaves_renamed_stored_group_mirror() -> None:
    """A stored group named by a mapping mirrors the group the mapping resolves to."""
    stale = stored_group(ADMINS, ["u-00u1", "u-00u2"], id="stale", external_id="00gX")
    stored = replace(synced(), groups=(stale, stored_group(ANALYSTS, ["u-00u2"])))

    plan = make_plan(snapshot({ADMINS: [ADA], ANALYSTS: [BOB]}), stored)

    membership = only(plan, ChangeKind.membership_change)
    assert membership.user_name == "bob@example.com"
    assert membership.details["leave"] == [
        {"group_id": "stale", "name": "Dashboard Admins", "idp_group_id": "00g1"}
    ]


def test_plan_inactive_idp_user_stays_member() -> None:
    inactive = replace(BOB, active=False)
    taken = snapshot({ADMINS: [ADA, inactive], ANALYSTS: [inactive]})

    plan = make_plan(taken, synced())

    assert kinds(plan) == [(ChangeKind.deactivate, "bob@example.com")]


def test_plan_deleted_account_leaves_groups() -> None:
    inactive = replace(BOB, active=False)
    stored = with_users(synced(), stored_user(BOB, active=False, deleted=True))

    plan = make_plan(snapshot({ADMINS: [ADA, inactive], ANALYSTS: [inactive]}), stored)

    membership = only(plan, ChangeKind.membership_change)
    assert membership.details["left"] == ["Analysts", "Dashboard Admins"]
    assert membership.reason == (
        "leaves 'Analysts' because the account is deleted and its IdP user is "
        "inactive; leaves 'Dashboard Admins' because the account is deleted and "
        "its IdP user is inactive"
    )


def test_plan_keeps_person_account_in_mapped_group() -> None:
    glass = person_user("p-1", "breakglass@example.com")
    stored = with_users(synced(), glass)
    stored = with_groups(stored, stored_group(ADMINS, ["u-00u1", "u-00u2", "p-1"]))

    plan = make_plan(snapshot({ADMINS: [ADA], ANALYSTS: [BOB]}), stored)

    assert [change.user_id for change in plan.changes] == ["u-00u2", "u-00u2"]


def test_plan_ignores_unmapped_stored_groups() -> None:
    unmapped = stored_group(AUTHORS, ["u-00u1"])
    stored = with_groups(synced(), unmapped)

    plan = make_plan(snapshot({ADMINS: [ADA, BOB], ANALYSTS: [BOB]}), stored)

    assert plan.changes == ()


def test_plan_reason_lists_few_groups() -> None:
    groups = [replace(ADMINS, id=f"00g{n}", name=f"Group {n}") for n in range(1, 6)]
    mappings = tuple(mapping(n, f"Group {n}") for n in range(1, 6))
    cy = idp_user(3, "cy@example.com")

    plan = make_plan(
        snapshot({group: [cy] for group in groups}), StoredState((), (), mappings)
    )

    create = only(plan, ChangeKind.create)
    assert "mapped groups 'Group 1' (00g1; mapping 1 grants global_admin), " in (
        create.reason
    )
    assert create.reason.endswith("and 2 more, but has no dashboard account")
    assert len(create.details["groups"]) == 5
    assert len(only(plan, ChangeKind.membership_change).details["join"]) == 5
