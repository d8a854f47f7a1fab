"""The directory-file connector: users and groups from a JSON file.

It serves air-gapped installations, trials and tests, and the IdP simulator
reads the same file. docs/directory-file.md describes the format. A connector
object reads the file on first use, so a run that builds a new connector reads
the file as it is then.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scim_reconciler.errors import ConnectorConfigError, GroupNotFoundError
from scim_reconciler.reconcile.connectors.base import (
    Connector,
    MemberPage,
    NonUserMember,
)
from scim_reconciler.reconcile.model import IdpGroup, IdpUser
from scim_reconciler.text import comparison_key

DEFAULT_PAGE_SIZE = 500

_USER_KEYS = frozenset(
    {
        "id",
        "userName",
        "email",
        "givenName",
        "familyName",
        "displayName",
        "active",
        "status",
    }
)
_GROUP_KEYS = frozenset({"id", "name", "members"})


@dataclass(frozen=True)
class DirectoryGroup:
    """A group of the file with its direct members (user and group ids)."""

    id: str
    name: str
    members: tuple[str, ...]


class Directory:
    """The validated content of a directory file."""

    def __init__(
        self,
        path: Path,
        users: dict[str, IdpUser],
        groups: dict[str, DirectoryGroup],
    ) -> None:
        self.path = path
        self.users = users
        self.groups = groups
        self._groups_by_name: dict[str, list[DirectoryGroup]] = {}
        for group in groups.values():
            self._groups_by_name.setdefault(comparison_key(group.name), []).append(
                group
            )
        self._flattened: dict[str, tuple[str, ...]] = {}

    def find_group(self, reference: str) -> DirectoryGroup:
        """Find a group by id or, failing that, by name without regard to case.

        Raises GroupNotFoundError when nothing matches, or when the name is
        shared by several groups.
        """
        group = self.groups.get(reference)
        if group is not None:
            return group
        found = self._groups_by_name.get(comparison_key(reference), [])
        if len(found) == 1:
            return found[0]
        if found:
            ids = ", ".join(group.id for group in found)
            raise GroupNotFoundError(
                f"group name {reference!r} matches {len(found)} groups in directory "
                f"file {self.path} ({ids}): map the group by its id instead"
            )
        raise GroupNotFoundError(
            f"group {reference!r} not found in directory file {self.path}: no "
            "group has that id or name; fix the mapping or add the group to the file"
        )

    def user_members(self, group_id: str) -> tuple[str, ...]:
        """Return the ids of the group's users, nested groups flattened.

        Nesting is followed transitively and each group is visited once, so a
        cycle of groups ends. Order: the file's order, breadth first.
        """
        cached = self._flattened.get(group_id)
        if cached is not None:
            return cached
        users: dict[str, None] = {}
        visited = {group_id}
        queue = deque([group_id])
        while queue:
            for member in self.groups[queue.popleft()].members:
                if member in self.users:
                    users[member] = None
                elif member not in visited:
                    visited.add(member)
                    queue.append(member)
        result = tuple(users)
        self._flattened[group_id] = result
        return result

    def direct_members(self, group_id: str) -> list[IdpUser | NonUserMember]:
        """Return the group's direct members, nested groups as non-user members."""
        members: list[IdpUser | NonUserMember] = []
        for member in self.groups[group_id].members:
            user = self.users.get(member)
            members.append(user if user else NonUserMember(member, "group"))
        return members


def read_directory(path: Path) -> Directory:
    """Read and validate a directory file.

    Raises ConnectorConfigError naming the file, the entry and the fix when the
    file is missing, is not JSON, or breaks the format.
    """
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ConnectorConfigError(
            f"directory file {path} not found: fix the connector's path or create "
            "the file (docs/directory-file.md describes the format)"
        ) from None
    except OSError as exc:
        raise ConnectorConfigError(
            f"directory file {path} could not be read: {exc.strerror}"
        ) from None
    try:
        document = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ConnectorConfigError(
            f"directory file {path} is not valid JSON: {exc.msg} at line "
            f"{exc.lineno}, column {exc.colno}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConnectorConfigError(
            f"directory file {path} is not valid UTF-8 at byte {exc.start}: save "
            "it as UTF-8"
        ) from None
    return _Validator(path).directory(document)


class _Validator:
    """Validator of a parsed directory file, which raises on the first problem."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str) -> ConnectorConfigError:
        return ConnectorConfigError(f"directory file {self.path}: {message}")

    def directory(self, document: Any) -> Directory:
        if not isinstance(document, dict):
            raise self.fail(
                'the top level must be an object with "users" and "groups" lists'
            )
        unknown = sorted(set(document) - {"users", "groups"})
        if unknown:
            raise self.fail(
                f'unknown top-level key {unknown[0]!r}: only "users" and '
                '"groups" are allowed'
            )
        users = self.users(self.entries(document, "users"))
        groups = self.groups(self.entries(document, "groups"), users)
        return Directory(self.path, users, groups)

    def entries(self, document: dict[str, Any], key: str) -> list[dict[str, Any]]:
        if key not in document:
            raise self.fail(f'"{key}" is missing: add "{key}": [] at the top level')
        entries = document[key]
        if not isinstance(entries, list):
            raise self.fail(f'"{key}" must be a list of objects')
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise self.fail(f"{key}[{index}] must be an object")
        return entries

    def required_text(self, entry: dict[str, Any], key: str, where: str) -> str:
        value = entry.get(key)
        if value is None:
            raise self.fail(f'{where} has no "{key}": add a non-empty string')
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f'{where} "{key}" must be a non-empty string: {value!r}')
        return value

    def optional_text(self, entry: dict[str, Any], key: str, where: str) -> str | None:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f'{where} "{key}" must be a string or null: {value!r}')
        return value

    def check_keys(
        self, entry: dict[str, Any], allowed: frozenset[str], where: str
    ) -> None:
        if entry.keys() <= allowed:
            return
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise self.fail(
                f"{where} has unknown key {unknown[0]!r}: allowed keys are "
                + ", ".join(sorted(allowed))
            )

    def users(self, entries: list[dict[str, Any]]) -> dict[str, IdpUser]:
        users: dict[str, IdpUser] = {}
        user_names: dict[str, str] = {}
        for index, entry in enumerate(entries):
            where = f"users[{index}]"
            user_id = self.required_text(entry, "id", where)
            where = f"users[{index}] (id {user_id!r})"
            self.check_keys(entry, _USER_KEYS, where)
            user_name = self.required_text(entry, "userName", where)
            active = entry.get("active", True)
            if not isinstance(active, bool):
                raise self.fail(f'{where} "active" must be true or false: {active!r}')
            if user_id in users:
                raise self.fail(
                    f"{where} repeats the id of an earlier user: give each user its "
                    "own id"
                )
            key = comparison_key(user_name)
            if key in user_names:
                raise self.fail(
                    f"{where} has userName {user_name!r}, already used by user "
                    f"{user_names[key]!r} (userNames compare without regard to "
                    "case): give each user its own userName"
                )
            user_names[key] = user_id
            text = self.optional_text
            users[user_id] = IdpUser(
                id=user_id,
                user_name=user_name,
                email=text(entry, "email", where),
                given_name=text(entry, "givenName", where),
                family_name=text(entry, "familyName", where),
                display_name=text(entry, "displayName", where),
                active=active,
                status=text(entry, "status", where),
            )
        return users

    def groups(
        self, entries: list[dict[str, Any]], users: dict[str, IdpUser]
    ) -> dict[str, DirectoryGroup]:
        groups: dict[str, DirectoryGroup] = {}
        for index, entry in enumerate(entries):
            where = f"groups[{index}]"
            group_id = self.required_text(entry, "id", where)
            where = f"groups[{index}] (id {group_id!r})"
            self.check_keys(entry, _GROUP_KEYS, where)
            name = self.required_text(entry, "name", where)
            if group_id in groups:
                raise self.fail(
                    f"{where} repeats the id of an earlier group: give each group "
                    "its own id"
                )
            if group_id in users:
                raise self.fail(
                    f"{where} has the id of a user, so a member with that id would "
                    "be ambiguous: give the group another id"
                )
            members = self.member_list(entry, where)
            groups[group_id] = DirectoryGroup(group_id, name, members)
        self.check_members(groups.values(), users, groups)
        return groups

    def member_list(self, entry: dict[str, Any], where: str) -> tuple[str, ...]:
        members = entry.get("members", [])
        if not isinstance(members, list) or not all(
            isinstance(member, str) for member in members
        ):
            raise self.fail(f'{where} "members" must be a list of user or group ids')
        # A member listed twice is one member, as in every IdP.
        return tuple(dict.fromkeys(members))

    def check_members(
        self,
        groups: Iterable[DirectoryGroup],
        users: dict[str, IdpUser],
        by_id: dict[str, DirectoryGroup],
    ) -> None:
        for group in groups:
            for member in group.members:
                if member not in users and member not in by_id:
                    raise self.fail(
                        f"group {group.id!r} ({group.name!r}) lists member "
                        f"{member!r}, which is neither a user id nor a group id: "
                        "add that user or group, or remove the member"
                    )


class DirectoryConnector(Connector):
    """Connector that reads users and groups from a directory file (JSON).

    Members of nested groups are listed as members of the parent. With
    ``flatten_nested`` false, each nested group is listed as a non-user member
    instead, the way Microsoft Graph's ``/members`` lists it.
    """

    kind = "file"

    def __init__(
        self,
        path: Path | str,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        flatten_nested: bool = True,
    ) -> None:
        if page_size < 1:
            raise ConnectorConfigError(
                f"page_size must be at least 1, not {page_size}: fix the connector "
                "configuration"
            )
        self.path = Path(path)
        self.page_size = page_size
        self.flatten_nested = flatten_nested
        self._directory: Directory | None = None
        self._lock = asyncio.Lock()

    @property
    def nested_groups_flattened(self) -> bool:
        return self.flatten_nested

    async def directory(self) -> Directory:
        """Return the file's content, reading it on the first call."""
        async with self._lock:
            if self._directory is None:
                # Parsing is CPU-bound (100k users are about 16 MB of JSON). In
                # a thread it shares the GIL with the event loop instead of
                # blocking it until done.
                self._directory = await asyncio.to_thread(read_directory, self.path)
            return self._directory

    async def resolve_group(self, reference: str) -> IdpGroup:
        group = (await self.directory()).find_group(reference)
        return IdpGroup(group.id, group.name)

    async def members(self, group: IdpGroup) -> AsyncIterator[MemberPage]:
        directory = await self.directory()
        if group.id not in directory.groups:
            raise GroupNotFoundError(
                f"group {group.id!r} not found in directory file {self.path}: "
                "resolve the group with this connector before listing its members"
            )
        members: list[IdpUser | NonUserMember]
        if self.flatten_nested:
            users = directory.users
            members = [users[user_id] for user_id in directory.user_members(group.id)]
        else:
            members = directory.direct_members(group.id)
        for start in range(0, len(members), self.page_size):
            yield members[start : start + self.page_size]

    async def check(self) -> list[str]:
        try:
            await self.directory()
        except ConnectorConfigError as exc:
            return [str(exc)]
        return []
