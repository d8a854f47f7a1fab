"""One batch of a plan's changes, applied in one transaction.

A batch first reads what its changes need in a few queries: their users and
groups, locked, and the userNames and memberships they could clash with. It
then decides each change in plan order, against that and against what the run
changed so far. Last, it writes users, emails, memberships, audit events and
the run's record of the changes with one bulk insert per table. ``apply.py``
describes the rules, and retries a batch that a concurrent SCIM push made fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar, cast

from sqlalchemy import Table, delete, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from scim_reconciler.clock import utcnow
from scim_reconciler.db.models import (
    AuditEvent,
    Base,
    Group,
    GroupMember,
    ManagedBy,
    RunChange,
    User,
    UserEmail,
)
from scim_reconciler.reconcile.bulk import insert_rows
from scim_reconciler.reconcile.model import (
    Change,
    ChangeKind,
    ChangeStatus,
    Explained,
)
from scim_reconciler.reconcile.rows import (
    GROUP_SCHEMA,
    audit_row,
    email_rows,
    profile_columns,
    profile_document,
    run_change_row,
)
from scim_reconciler.text import comparison_key

K = TypeVar("K")
V = TypeVar("V")


class JournaledDict(dict[K, V]):
    """A dict whose writes since ``begin`` can be undone.

    Reads stay those of a plain dict; only item assignment is recorded.
    """

    def __init__(self) -> None:
        super().__init__()
        self.journal: list[tuple[K, V | None, bool]] | None = None

    def __setitem__(self, key: K, value: V) -> None:
        if self.journal is not None:
            self.journal.append((key, self.get(key), key in self))
        super().__setitem__(key, value)

    def begin(self) -> None:
        self.journal = []

    def undo(self) -> None:
        for key, old, existed in reversed(self.journal or []):
            if existed:
                super().__setitem__(key, old)  # type: ignore[assignment]
            else:
                self.pop(key, None)
        self.journal = None

    def end(self) -> None:
        self.journal = None


@dataclass
class RunState:
    """The run's own changes so far, so that its later changes still apply.

    Keys of ``created``, ``failed_users`` and ``membership`` are userNames in
    comparison form; ``groups_by_idp`` maps IdP group ids to stored ids.
    """

    user_versions: JournaledDict[str, int] = field(default_factory=JournaledDict)
    group_versions: JournaledDict[str, int] = field(default_factory=JournaledDict)
    created: JournaledDict[str, str] = field(default_factory=JournaledDict)
    failed_users: JournaledDict[str, bool] = field(default_factory=JournaledDict)
    membership: JournaledDict[str, ChangeStatus] = field(default_factory=JournaledDict)
    groups_by_idp: JournaledDict[str, str] = field(default_factory=JournaledDict)

    def _journals(self) -> list[JournaledDict[str, Any]]:
        return [getattr(self, item.name) for item in fields(self)]

    def begin(self) -> None:
        """Start recording writes, so that a batch that rolls back can undo them."""
        for journal in self._journals():
            journal.begin()

    def undo(self) -> None:
        """Undo the writes since ``begin``; the batch's transaction rolled back."""
        for journal in self._journals():
            journal.undo()

    def end(self) -> None:
        """Keep the writes since ``begin``; the batch's transaction committed."""
        for journal in self._journals():
            journal.end()

    def defer(self, change: Change) -> None:
        """Record that a change was deferred, so the user's later changes are."""
        key = comparison_key(change.user_name)
        if change.kind is ChangeKind.membership_change:
            self.membership[key] = ChangeStatus.deferred
        if change.kind is not ChangeKind.role_change:
            self.failed_users[key] = True

    def rebase(self, change: Change) -> Change:
        """Return a change not applied yet as if planned after the run's changes.

        A held change is approved later, when the run's own changes have moved
        the versions of the groups (and possibly the user) it names. So it must
        expect those versions and name the groups the run created. Then only a
        SCIM push made since the run defers it.
        """
        version = self.user_versions.get(change.user_id or "")
        explanation = change.explanation
        group_versions = dict(change.group_versions)
        if change.kind is ChangeKind.membership_change:
            details = dict(change.details)
            for side in ("join", "leave"):
                entries = []
                for entry in details.get(side, []):
                    group_id = stored_group_id(entry, self)
                    if group_id is not None and group_id in self.group_versions:
                        group_versions[group_id] = self.group_versions[group_id]
                    entries.append({**entry, "group_id": group_id})
                details[side] = entries
            explanation = Explained(change.reason, details)
        return replace(
            change,
            expected_version=change.expected_version if version is None else version,
            group_versions=group_versions,
            explanation=explanation,
        )


class Batch:
    """Decides and writes one batch of changes within one session's transaction."""

    def __init__(
        self,
        session: AsyncSession,
        org_id: int,
        run_id: str,
        state: RunState,
        actor: str,
    ) -> None:
        self.session = session
        self.org_id = org_id
        self.run_id = run_id
        self.state = state
        self.actor = actor
        self.now = utcnow()
        self.users: dict[str, User] = {}
        # Version of each locked group when the batch read it, by stored id.
        self.group_versions: dict[str, int] = {}
        # userName keys and externalIds that a create must not take.
        self.taken_names: set[str] = set()
        self.taken_external_ids: set[str] = set()
        self.memberships: set[tuple[str, str]] = set()
        # Rows to write at the end, in this order.
        self.new_users: list[dict[str, Any]] = []
        self.email_resets: list[str] = []
        self.new_emails: list[dict[str, Any]] = []
        self.joins: list[dict[str, str]] = []
        self.leaves: dict[str, list[str]] = {}
        self.touched_groups: set[str] = set()
        self.audit_rows: list[dict[str, Any]] = []
        self.run_change_rows: list[dict[str, Any]] = []

    async def apply(
        self, changes: Sequence[Change], seqs: Sequence[int] | None = None
    ) -> list[ChangeStatus]:
        """Decide every change in order, write the outcome, return the statuses.

        ``seqs`` are the changes' positions in the run's plan. Given, the batch
        also records every change with its status in run_changes.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            # asyncpg prepares each statement, and after five executions
            # PostgreSQL may keep a generic plan made while the run's first
            # batches left the users table small: a sequential scan that then
            # reads the whole table for every batch.
            await self.session.execute(
                text("SET LOCAL plan_cache_mode = force_custom_plan")
            )
        # Each change's reason and details are built once, for every use here.
        explained = [change.explanation.explain() for change in changes]
        details = [change_details for _reason, change_details in explained]
        await self._load(changes, details)
        statuses = []
        for position, change in enumerate(changes):
            reason = explained[position][0]
            status = await self._decide(change, reason, details[position])
            statuses.append(status)
            if seqs is not None:
                self.run_change_rows.append(
                    run_change_row(
                        self.run_id,
                        seqs[position],
                        change.with_status(status),
                        reason,
                        details[position],
                    )
                )
        await self._write()
        return statuses

    # Reading

    async def _load(
        self, changes: Sequence[Change], details: Sequence[dict[str, Any]]
    ) -> None:
        user_ids = sorted({c.user_id for c in changes if c.user_id})
        if user_ids:
            users = (
                select(User)
                .where(User.org_id == self.org_id, User.id.in_(user_ids))
                .order_by(User.id)
                .with_for_update()
            )
            for row in (await self.session.scalars(users)).all():
                self.users[row.id] = row
        profiles = [
            detail["profile"]
            for change, detail in zip(changes, details, strict=True)
            if change.kind is ChangeKind.create
        ]
        if profiles:
            await self._load_taken(profiles)
        memberships = [
            (change, detail)
            for change, detail in zip(changes, details, strict=True)
            if change.kind is ChangeKind.membership_change
        ]
        if memberships:
            await self._load_groups(memberships)

    async def _load_taken(self, profiles: list[dict[str, Any]]) -> None:
        """Read the userNames and externalIds of the creates that exist already.

        Two queries rather than one with OR, so that each uses its unique index
        (SQLite scans the whole table for the OR of two IN lists).
        """
        names = sorted({comparison_key(p["userName"]) for p in profiles})
        external_ids = sorted(
            {p["externalId"] for p in profiles if p.get("externalId")}
        )
        in_org = User.org_id == self.org_id
        taken = await self.session.scalars(
            select(User.user_name_key).where(in_org, User.user_name_key.in_(names))
        )
        self.taken_names.update(taken)
        if external_ids:
            taken = await self.session.scalars(
                select(User.external_id).where(
                    in_org, User.external_id.in_(external_ids)
                )
            )
            self.taken_external_ids.update(
                external_id for external_id in taken if external_id is not None
            )

    async def _load_groups(
        self, memberships: list[tuple[Change, dict[str, Any]]]
    ) -> None:
        """Lock the stored groups the changes name and read their memberships."""
        group_ids = sorted(
            {
                stored_id
                for _change, details in memberships
                for entry in _entries(details)
                if (stored_id := stored_group_id(entry, self.state)) is not None
            }
        )
        if not group_ids:
            return
        groups = (
            select(Group.id, Group.version)
            .where(Group.org_id == self.org_id, Group.id.in_(group_ids))
            .order_by(Group.id)
            .with_for_update()
        )
        for group_id, version in await self.session.execute(groups):
            self.group_versions[group_id] = version
        member_ids = sorted({c.user_id for c, _details in memberships if c.user_id})
        if member_ids:
            rows = await self.session.execute(
                select(GroupMember.group_id, GroupMember.user_id).where(
                    GroupMember.user_id.in_(member_ids),
                    GroupMember.group_id.in_(group_ids),
                )
            )
            self.memberships = {(row.group_id, row.user_id) for row in rows}

    # Deciding

    async def _decide(
        self, change: Change, reason: str, details: dict[str, Any]
    ) -> ChangeStatus:
        key = comparison_key(change.user_name)
        if change.kind is ChangeKind.create:
            user_id = self._create(details["profile"])
        elif change.kind is ChangeKind.membership_change:
            user_id = await self._membership(change, details, key)
            self.state.membership[key] = (
                ChangeStatus.deferred if user_id is None else ChangeStatus.applied
            )
        elif change.kind is ChangeKind.role_change:
            # Roles follow from membership, so this change shares its outcome.
            status = self.state.membership.get(key, ChangeStatus.applied)
            if status is ChangeStatus.applied:
                user_id = change.user_id or self.state.created.get(key)
                self._audit(change, reason, details, user_id)
            return status
        else:
            user_id = self._update(change, details)
        if user_id is None:
            self.state.failed_users[key] = True
            return ChangeStatus.deferred
        self._audit(change, reason, details, user_id)
        return ChangeStatus.applied

    def _audit(
        self,
        change: Change,
        reason: str,
        details: dict[str, Any],
        user_id: str | None,
    ) -> None:
        self.audit_rows.append(
            audit_row(
                org_id=self.org_id,
                at=self.now,
                action=change.kind.value,
                user_id=user_id,
                actor=self.actor,
                run_id=self.run_id,
                details={"userName": change.user_name, "reason": reason, **details},
            )
        )

    def _current(self, change: Change) -> User | None:
        """Return the user if it is still as the plan saw it, else None."""
        if change.user_id is None:
            return None
        row = self.users.get(change.user_id)
        if row is None or row.managed_by is not ManagedBy.idp:
            return None
        expected = self.state.user_versions.get(row.id, change.expected_version)
        return row if row.version == expected else None

    def _create(self, profile: dict[str, Any]) -> str | None:
        """Create the account; return its id, or None to defer the change."""
        name = comparison_key(profile["userName"])
        external_id = profile.get("externalId")
        if name in self.taken_names or external_id in self.taken_external_ids:
            return None  # a push created this user during the run
        user_id = str(uuid.uuid4())
        document = profile_document(profile, None)
        self.new_users.append(
            {
                "id": user_id,
                "org_id": self.org_id,
                "managed_by": ManagedBy.idp,
                "active": True,
                "deleted": False,
                "version": 1,
                "created_at": self.now,
                "last_modified": self.now,
                **profile_columns(profile, document, None),
            }
        )
        self.new_emails.extend(email_rows(user_id, self.org_id, document))
        self.taken_names.add(name)
        if external_id:
            self.taken_external_ids.add(external_id)
        self.state.created[name] = user_id
        self.state.user_versions[user_id] = 1
        return user_id

    def _update(self, change: Change, details: dict[str, Any]) -> str | None:
        """Change the account; return its id, or None to defer the change."""
        row = self._current(change)
        if row is None:
            return None
        if change.kind is ChangeKind.deactivate:
            row.active = False
        elif change.kind is ChangeKind.reactivate:
            row.active = True
            row.deleted = False
            if "profile" in details:
                self._set_profile(row, details["profile"])
        elif change.kind is ChangeKind.profile_update:
            # A new userName taken meanwhile fails the write; apply.py retries.
            self._set_profile(row, details["profile"])
        row.version += 1
        row.last_modified = self.now
        self.state.user_versions[row.id] = row.version
        return row.id

    def _set_profile(self, row: User, profile: dict[str, Any]) -> None:
        document = profile_document(profile, row.attributes)
        for name, value in profile_columns(profile, document, row.external_id).items():
            setattr(row, name, value)
        self.email_resets.append(row.id)
        self.new_emails.extend(email_rows(row.id, self.org_id, document))

    async def _membership(
        self, change: Change, details: dict[str, Any], key: str
    ) -> str | None:
        """Change the user's groups; return its id, or None to defer the change."""
        if key in self.state.failed_users:
            return None
        user_id = change.user_id or self.state.created.get(key)
        if user_id is None:
            return None
        if change.user_id is not None and self._current(change) is None:
            return None
        joins = [await self._group(e, change) for e in details.get("join", [])]
        leaves = [await self._group(e, change) for e in details.get("leave", [])]
        joined, left = _present(joins), _present(leaves)
        if len(joined) < len(joins) or len(left) < len(leaves):
            return None
        for group_id in joined:
            if (group_id, user_id) not in self.memberships:
                self.memberships.add((group_id, user_id))
                self.joins.append({"group_id": group_id, "user_id": user_id})
            self.touched_groups.add(group_id)
        for group_id in left:
            self.memberships.discard((group_id, user_id))
            self.leaves.setdefault(group_id, []).append(user_id)
            self.touched_groups.add(group_id)
        return user_id

    async def _group(self, entry: dict[str, Any], change: Change) -> str | None:
        """Return the stored id of an entry's group, creating it if the run may.

        Returns None when the group changed since the plan or a push created it
        meanwhile, so the change must be deferred.
        """
        group_id = stored_group_id(entry, self.state)
        if group_id:
            version = self.group_versions.get(group_id)
            if version is None:
                return None
            expected = self.state.group_versions.get(
                group_id, change.group_versions.get(group_id, version)
            )
            return group_id if version == expected else None
        name = str(entry["name"])
        found = await self.session.scalar(
            select(Group.id).where(
                Group.org_id == self.org_id,
                or_(
                    Group.external_id == entry.get("idp_group_id"),
                    Group.display_name_key == comparison_key(name),
                ),
            )
        )
        if found is not None:
            return None  # a push created it during the run; the next run uses it
        group_id = str(uuid.uuid4())
        row = {
            "id": group_id,
            "org_id": self.org_id,
            "display_name": name,
            "display_name_key": comparison_key(name),
            "external_id": entry.get("idp_group_id"),
            "attributes": {
                "schemas": [GROUP_SCHEMA],
                "displayName": name,
                "externalId": entry.get("idp_group_id"),
            },
            "version": 1,
            "created_at": self.now,
            "last_modified": self.now,
        }
        await self.session.execute(insert(table_of(Group)), [row])
        self.group_versions[group_id] = 1
        self.state.groups_by_idp[str(entry.get("idp_group_id"))] = group_id
        self.state.group_versions[group_id] = 1
        return group_id

    # Writing

    async def _write(self) -> None:
        """Write the decided rows; foreign keys fix the order of the tables."""
        session = self.session
        await insert_rows(session, table_of(User), self.new_users)
        await session.flush()
        for chunk in _chunks(self.email_resets):
            await session.execute(delete(UserEmail).where(UserEmail.user_id.in_(chunk)))
        await insert_rows(session, table_of(UserEmail), self.new_emails)

        await insert_rows(session, table_of(GroupMember), self.joins)
        for group_id, user_ids in self.leaves.items():
            for chunk in _chunks(user_ids):
                await session.execute(
                    delete(GroupMember).where(
                        GroupMember.group_id == group_id,
                        GroupMember.user_id.in_(chunk),
                    )
                )

        # Each touched group's version moves once, so SCIM clients see the change.
        touched = sorted(self.touched_groups)
        for chunk in _chunks(touched):
            await session.execute(
                update(Group)
                .where(Group.id.in_(chunk))
                .values(version=Group.version + 1, last_modified=self.now)
                .execution_options(synchronize_session=False)
            )
        for group_id in touched:
            self.state.group_versions[group_id] = self.group_versions[group_id] + 1

        await insert_rows(session, table_of(AuditEvent), self.audit_rows)
        await insert_rows(session, table_of(RunChange), self.run_change_rows)
        await session.flush()


def stored_group_id(entry: dict[str, Any], state: RunState) -> str | None:
    """Return the stored id of a membership entry's group, if it exists by now."""
    group_id = entry.get("group_id") or state.groups_by_idp.get(
        str(entry.get("idp_group_id"))
    )
    return str(group_id) if group_id else None


def table_of(model: type[Base]) -> Table:
    """Return a model's table, for Core statements that skip the ORM."""
    return cast(Table, model.__table__)


def _entries(details: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return [*details.get("join", []), *details.get("leave", [])]


def _present(groups: list[str | None]) -> list[str]:
    return [group for group in groups if group is not None]


def _chunks(values: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
