"""Value objects of reconciliation: IdP state, stored state, changes and plans.

Words used throughout: a *snapshot* is the complete membership of every mapped
group read from the IdP; *stored* state is what the dashboard store holds; a
*plan* is the list of *changes* that bring the store in line with the snapshot;
*drift* is the number of changes a run applies, each a push event that went
missing.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from scim_reconciler.services.roles import Grant


@dataclass(frozen=True, slots=True)
class IdpUser:
    """A user as the IdP reports it; ``id`` is the IdP's immutable id."""

    id: str
    user_name: str
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    active: bool = True
    # The IdP's own status word (Okta's SUSPENDED, Entra's accountEnabled=false),
    # shown in reasons so an admin can check it in the IdP.
    status: str | None = None


@dataclass(frozen=True)
class IdpGroup:
    """A group as the IdP reports it; ``id`` is the IdP's immutable id."""

    id: str
    name: str


@dataclass(frozen=True)
class MappedGroup:
    """A mapping's group reference (externalId or displayName) as configured."""

    reference: str


@dataclass(frozen=True)
class GroupSnapshot:
    """The complete membership of one mapped group at snapshot time."""

    reference: str
    group: IdpGroup
    member_ids: frozenset[str]


@dataclass(frozen=True)
class Snapshot:
    """Everything a run read from the IdP before planning anything."""

    taken_at: datetime
    groups: tuple[GroupSnapshot, ...]
    users: dict[str, IdpUser]
    nested_groups_flattened: bool
    # Members that were not users (devices, contacts, service principals, or
    # nested groups when not flattened); skipped and counted, never treated as users.
    skipped_members: int = 0
    # The same members counted by the connector's type word ("group", "device").
    skipped_member_types: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MappingRule:
    """A role mapping: members of the IdP group ``group`` (externalId or
    displayName) receive ``role_slug``, in full or limited to ``object_ids``.

    In the store it matches a group whose externalId equals ``group`` or whose
    displayName equals it without regard to case.
    """

    id: int
    group: str
    role_slug: str
    grant: Grant
    object_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StoredGroup:
    """A group in the store, as the plan reads it; ``version`` guards applies."""

    id: str
    display_name: str
    external_id: str | None
    member_ids: frozenset[str]
    version: int


@dataclass(frozen=True, slots=True)
class StoredUser:
    """A dashboard user in the store; ``version`` is bumped by every change.

    ``email`` is the primary email in its comparison form (case-folded), as the
    store's ``email`` column keeps it.
    """

    id: str
    user_name: str
    external_id: str | None
    email: str | None
    given_name: str | None
    family_name: str | None
    display_name: str | None
    active: bool
    deleted: bool
    managed_by_idp: bool
    version: int


@dataclass(frozen=True)
class StoredState:
    """Stored state of one organization, as the run reads it before planning."""

    users: tuple[StoredUser, ...]
    groups: tuple[StoredGroup, ...]
    mappings: tuple[MappingRule, ...]
    # Role names of the catalog by slug, for reasons and role details. A slug
    # missing here is used as the name.
    role_names: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    """Per-organization limits that decide what a run may apply on its own."""

    # Deactivations above either limit are held for an admin's approval.
    max_deactivations: int = 25
    max_deactivation_percent: float = 10.0
    # A mapped group that comes back empty while it had members is suspect.
    hold_empty_groups: bool = True


class ChangeKind(enum.StrEnum):
    create = "create"
    reactivate = "reactivate"
    deactivate = "deactivate"
    role_change = "role_change"
    profile_update = "profile_update"
    membership_change = "membership_change"


class ChangeStatus(enum.StrEnum):
    planned = "planned"  # in a dry run, or not yet applied
    applied = "applied"
    held = "held"  # waiting for an admin's approval
    deferred = "deferred"  # the store changed after the snapshot; a push won
    failed = "failed"


class Explanation(abc.ABC):
    """The reason and the ``details`` of a change, built each time they are read.

    A plan of 100k new users has 300k changes, and kept as text and dicts their
    reasons and details took about 1.4 KB each (docs/benchmarks.md). So the
    planner gives most changes a small object that builds both from the plan's
    shared indexes whenever apply, the run record or a caller reads them. Two
    explanations are equal when their reasons and details are.
    """

    __slots__ = ()

    @abc.abstractmethod
    def reason(self) -> str:
        """Build the sentence that explains why the change is planned."""

    @abc.abstractmethod
    def details(self) -> dict[str, Any]:
        """Build the change's details; each call returns a new dict."""

    def explain(self) -> tuple[str, dict[str, Any]]:
        """Build the reason and the details together, sharing what both need."""
        return self.reason(), self.details()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self.reason() == other.reason() and self.details() == other.details()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason()!r})"


class Explained(Explanation):
    """An explanation given as values: read from the store, or a held change's."""

    __slots__ = ("_details", "_reason")

    def __init__(self, reason: str, details: dict[str, Any]) -> None:
        self._reason = reason
        self._details = details

    def reason(self) -> str:
        return self._reason

    def details(self) -> dict[str, Any]:
        return self._details


# Shared by the changes that touch no existing group, most of a first run's.
NO_GROUP_VERSIONS: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True, init=False)
class Change:
    """One planned change to one user, with the reason an admin can check.

    ``user_id`` is None only for a create and the membership and role changes
    of the user it creates. ``expected_version`` is the user's version when the
    stored state was read; apply changes the user only if it is still at that
    version. Membership changes also carry the versions of the groups they
    touch in ``group_versions``.

    The changes of one user are adjacent in a plan, in the order create,
    reactivate, profile_update, deactivate, membership_change, role_change, and
    carry the same ``user_name``: the account's current userName, or for a
    create the IdP's. docs/reconciliation.md lists the ``details`` of each kind.

    ``reason`` and ``details`` are read through ``explanation``. A change is
    built with either ``reason`` and ``details`` or an ``explanation``.
    """

    kind: ChangeKind
    user_name: str
    external_id: str | None
    user_id: str | None
    expected_version: int | None
    status: ChangeStatus
    hold_reason: str | None
    group_versions: Mapping[str, int]
    explanation: Explanation

    def __init__(
        self,
        kind: ChangeKind,
        user_name: str,
        external_id: str | None,
        reason: str | None = None,
        user_id: str | None = None,
        expected_version: int | None = None,
        details: dict[str, Any] | None = None,
        status: ChangeStatus = ChangeStatus.planned,
        hold_reason: str | None = None,
        group_versions: Mapping[str, int] | None = None,
        explanation: Explanation | None = None,
    ) -> None:
        if explanation is None:
            if reason is None:
                raise TypeError("a change needs a reason or an explanation")
            explanation = Explained(reason, details if details is not None else {})
        elif reason is not None or details is not None:
            raise TypeError("give a change either reason and details or explanation")
        # The class is frozen, so its fields are set as dataclasses' __init__ does.
        set_field = object.__setattr__
        set_field(self, "kind", kind)
        set_field(self, "user_name", user_name)
        set_field(self, "external_id", external_id)
        set_field(self, "user_id", user_id)
        set_field(self, "expected_version", expected_version)
        set_field(self, "status", status)
        set_field(self, "hold_reason", hold_reason)
        set_field(self, "group_versions", group_versions or NO_GROUP_VERSIONS)
        set_field(self, "explanation", explanation)

    @property
    def reason(self) -> str:
        return self.explanation.reason()

    @property
    def details(self) -> dict[str, Any]:
        return self.explanation.details()

    def with_status(self, status: ChangeStatus) -> Change:
        """Return a copy with another status.

        It is ``dataclasses.replace`` without the field lookups, because a
        large run copies every change once.
        """
        return Change(
            self.kind,
            self.user_name,
            self.external_id,
            user_id=self.user_id,
            expected_version=self.expected_version,
            status=status,
            hold_reason=self.hold_reason,
            group_versions=self.group_versions,
            explanation=self.explanation,
        )


@dataclass(frozen=True)
class Plan:
    """The changes that bring the store in line with a snapshot."""

    changes: tuple[Change, ...]
    # Users the IdP lists but the plan must leave alone, as (userName, reason)
    # (for example a user created by hand in the dashboard).
    skipped: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    def count_by_kind(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in ChangeKind}
        for change in self.changes:
            counts[change.kind.value] += 1
        return counts
