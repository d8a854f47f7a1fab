"""The directory-file connector: format, group resolution, paging, nesting, errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from scim_reconciler.errors import ConnectorConfigError, GroupNotFoundError
from scim_reconciler.reconcile.connectors.base import MemberPage, NonUserMember
from scim_reconciler.reconcile.connectors.directory import DirectoryConnector
from scim_reconciler.reconcile.model import IdpGroup, IdpUser
from tests.reconcile.conftest import WriteDirectory

ADA: dict[str, Any] = {
    "id": "00u1",
    "userName": "ada@example.com",
    "email": "ada@example.com",
    "givenName": "Ada",
    "familyName": "Lovelace",
    "active": True,
}


def user(number: int, **fields: Any) -> dict[str, Any]:
    return {"id": f"00u{number}", "userName": f"user{number}@example.com", **fields}


async def pages_of(connector: DirectoryConnector, reference: str) -> list[MemberPage]:
    async with asyncio.timeout(5):
        group = await connector.resolve_group(reference)
        return [page async for page in connector.members(group)]


async def member_ids(connector: DirectoryConnector, reference: str) -> list[str]:
    return [
        member.id for page in await pages_of(connector, reference) for member in page
    ]


async def config_error(path: Path) -> str:
    """Return the message of the ConnectorConfigError that reading the file raises."""
    connector = DirectoryConnector(path)
    with pytest.raises(ConnectorConfigError) as raised:
        async with asyncio.timeout(5):
            await connector.resolve_group("anything")
    return str(raised.value)


async def test_directory_reads_user_fields(write_directory: WriteDirectory) -> None:
    path = write_directory(
        {
            "users": [
                {**ADA, "displayName": "Ada L.", "status": "ACTIVE"},
                user(2, active=False, status="SUSPENDED"),
            ],
            "groups": [{"id": "00g1", "name": "Admins", "members": ["00u1", "00u2"]}],
        }
    )

    pages = await pages_of(DirectoryConnector(path), "00g1")

    assert pages == [
        [
            IdpUser(
                id="00u1",
                user_name="ada@example.com",
                email="ada@example.com",
                given_name="Ada",
                family_name="Lovelace",
                display_name="Ada L.",
                active=True,
                status="ACTIVE",
            ),
            IdpUser(
                id="00u2",
                user_name="user2@example.com",
                active=False,
                status="SUSPENDED",
            ),
        ]
    ]


async def test_directory_user_active_by_default(
    write_directory: WriteDirectory,
) -> None:
    path = write_directory(
        {
            "users": [user(1)],
            "groups": [{"id": "00g1", "name": "A", "members": ["00u1"]}],
        }
    )

    [[member]] = await pages_of(DirectoryConnector(path), "00g1")

    assert isinstance(member, IdpUser)
    assert member.active is True
    assert member.email is None


async def test_directory_resolves_group_by_id(write_directory: WriteDirectory) -> None:
    path = write_directory(
        {"users": [], "groups": [{"id": "00g1", "name": "Dashboard Admins"}]}
    )

    group = await DirectoryConnector(path).resolve_group("00g1")

    assert group == IdpGroup("00g1", "Dashboard Admins")


async def test_directory_resolves_group_by_name_ignoring_case(
    write_directory: WriteDirectory,
) -> None:
    path = write_directory(
        {"users": [], "groups": [{"id": "00g1", "name": "Dashboard Admins"}]}
    )

    group = await DirectoryConnector(path).resolve_group("dashboard ADMINS")

    assert group == IdpGroup("00g1", "Dashboard Admins")


async def test_directory_id_wins_over_name(write_directory: WriteDirectory) -> None:
    """A reference equal to one group's id and another's name means the id."""
    path = write_directory(
        {
            "users": [],
            "groups": [{"id": "00g1", "name": "00g2"}, {"id": "00g2", "name": "Two"}],
        }
    )

    group = await DirectoryConnector(path).resolve_group("00g2")

    assert group == IdpGroup("00g2", "Two")


async def test_directory_unknown_group_not_found(
    write_directory: WriteDirectory,
) -> None:
    path = write_directory({"users": [], "groups": [{"id": "00g1", "name": "A"}]})

    with pytest.raises(GroupNotFoundError) as raised:
        await DirectoryConnector(path).resolve_group("Admins")

    assert "'Admins' not found" in str(raised.value)
    assert str(path) in str(raised.value)


async def test_directory_shared_name_is_ambiguous(
    write_directory: WriteDirectory,
) -> None:
    """Entra ID allows two groups with one name; resolving by name must not guess."""
    path = write_directory(
        {
            "users": [],
            "groups": [
                {"id": "00g1", "name": "Admins"},
                {"id": "00g2", "name": "ADMINS"},
            ],
        }
    )

    with pytest.raises(GroupNotFoundError) as raised:
        await DirectoryConnector(path).resolve_group("admins")

    assert "matches 2 groups" in str(raised.value)
    assert "00g1, 00g2" in str(raised.value)
    assert "map the group by its id" in str(raised.value)


async def test_directory_pages_have_configured_size(
    write_directory: WriteDirectory,
) -> None:
    path = write_directory(
        {
            "users": [user(number) for number in range(1, 6)],
            "groups": [
                {"id": "00g1", "name": "A", "members": [f"00u{n}" for n in range(1, 6)]}
            ],
        }
    )

    pages = await pages_of(DirectoryConnector(path, page_size=2), "00g1")

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [member.id for page in pages for member in page] == [
        "00u1",
        "00u2",
        "00u3",
        "00u4",
        "00u5",
    ]


async def test_directory_empty_group_has_no_pages(
    write_directory: WriteDirectory,
) -> None:
    path = write_directory({"users": [], "groups": [{"id": "00g1", "name": "A"}]})

    assert await pages_of(DirectoryConnector(path), "00g1") == []


async def test_directory_repeated_member_listed_once(
    write_directory: WriteDirectory,
) -> None:
    path = write_directory(
        {
            "users": [user(1)],
            "groups": [{"id": "00g1", "name": "A", "members": ["00u1", "00u1"]}],
        }
    )

    assert await member_ids(DirectoryConnector(path), "00g1") == ["00u1"]


async def test_directory_flattens_nested_groups(
    write_directory: WriteDirectory,
) -> None:
    """Members of nested groups, at any depth, are members of the parent."""
    path = write_directory(
        {
            "users": [user(1), user(2), user(3)],
            "groups": [
                {"id": "00g1", "name": "All", "members": ["00u1", "00g2"]},
                {"id": "00g2", "name": "Middle", "members": ["00g3", "00u1"]},
                {"id": "00g3", "name": "Inner", "members": ["00u2", "00u3"]},
            ],
        }
    )
    connector = DirectoryConnector(path)

    assert await member_ids(connector, "All") == ["00u1", "00u2", "00u3"]
    assert connector.nested_groups_flattened is True


async def test_directory_nesting_cycle_ends(write_directory: WriteDirectory) -> None:
    path = write_directory(
        {
            "users": [user(1), user(2)],
            "groups": [
                {"id": "00g1", "name": "A", "members": ["00u1", "00g2"]},
                {"id": "00g2", "name": "B", "members": ["00u2", "00g1"]},
                {"id": "00g3", "name": "Self", "members": ["00g3"]},
            ],
        }
    )
    connector = DirectoryConnector(path)

    assert await member_ids(connector, "A") == ["00u1", "00u2"]
    assert await member_ids(connector, "B") == ["00u2", "00u1"]
    assert await member_ids(connector, "Self") == []


async def test_directory_unflattened_lists_nested_groups(
    write_directory: WriteDirectory,
) -> None:
    """Without flattening, a nested group is a non-user member, as Graph lists it."""
    path = write_directory(
        {
            "users": [user(1), user(2)],
            "groups": [
                {"id": "00g1", "name": "A", "members": ["00u1", "00g2"]},
                {"id": "00g2", "name": "B", "members": ["00u2"]},
            ],
        }
    )
    connector = DirectoryConnector(path, flatten_nested=False)

    [page] = await pages_of(connector, "A")

    assert [member.id for member in page] == ["00u1", "00g2"]
    assert page[1] == NonUserMember("00g2", "group")
    assert connector.nested_groups_flattened is False


async def test_directory_rereads_file_per_connector(
    write_directory: WriteDirectory,
) -> None:
    """A run builds a new connector, so edits between runs are seen."""
    group = {"id": "00g1", "name": "A", "members": ["00u1"]}
    path = write_directory({"users": [user(1), user(2)], "groups": [group]})
    first = DirectoryConnector(path)
    assert await member_ids(first, "A") == ["00u1"]

    write_directory(
        {"users": [user(1), user(2)], "groups": [{**group, "members": ["00u2"]}]}
    )

    assert await member_ids(DirectoryConnector(path), "A") == ["00u2"]
    assert await member_ids(first, "A") == ["00u1"]


async def test_directory_check_reports_problem(tmp_path: Path) -> None:
    connector = DirectoryConnector(tmp_path / "missing.json")

    problems = await connector.check()

    assert len(problems) == 1
    assert "not found" in problems[0]


async def test_directory_check_passes_valid_file(
    write_directory: WriteDirectory,
) -> None:
    path = write_directory({"users": [], "groups": []})

    assert await DirectoryConnector(path).check() == []


async def test_directory_members_of_foreign_group(
    write_directory: WriteDirectory,
) -> None:
    path = write_directory({"users": [], "groups": []})
    connector = DirectoryConnector(path)

    with pytest.raises(GroupNotFoundError):
        async with asyncio.timeout(5):
            [page async for page in connector.members(IdpGroup("00g9", "Other"))]


def test_directory_rejects_page_size_zero(tmp_path: Path) -> None:
    with pytest.raises(ConnectorConfigError) as raised:
        DirectoryConnector(tmp_path / "directory.json", page_size=0)

    assert "page_size must be at least 1" in str(raised.value)


async def test_directory_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.json"

    message = await config_error(path)

    assert f"directory file {path} not found" in message
    assert "docs/directory-file.md" in message


async def test_directory_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "directory.json"
    path.write_text('{"users": [\n  {"id": "00u1",}\n]}', encoding="utf-8")

    message = await config_error(path)

    assert f"directory file {path} is not valid JSON" in message
    assert "line 2" in message


async def test_directory_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "directory.json"
    path.write_bytes(b'{"users": [], "groups": [{"id": "\xff", "name": "x"}]}')

    message = await config_error(path)

    assert "not valid UTF-8" in message


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], 'the top level must be an object with "users" and "groups" lists'),
        ({"groups": []}, '"users" is missing: add "users": [] at the top level'),
        ({"users": []}, '"groups" is missing'),
        ({"users": {}, "groups": []}, '"users" must be a list of objects'),
        ({"users": ["00u1"], "groups": []}, "users[0] must be an object"),
        ({"users": [], "groups": [], "roles": []}, "unknown top-level key 'roles'"),
        (
            {"users": [{"userName": "a@example.com"}], "groups": []},
            'users[0] has no "id": add a non-empty string',
        ),
        (
            {"users": [{"id": "00u1"}], "groups": []},
            "users[0] (id '00u1') has no \"userName\"",
        ),
        (
            {"users": [{"id": 7, "userName": "a"}], "groups": []},
            'users[0] "id" must be a non-empty string: 7',
        ),
        (
            {"users": [{"id": "00u1", "userName": " "}], "groups": []},
            "\"userName\" must be a non-empty string: ' '",
        ),
        (
            {"users": [user(1, active="yes")], "groups": []},
            "users[0] (id '00u1') \"active\" must be true or false: 'yes'",
        ),
        (
            {"users": [user(1, email=["a@example.com"])], "groups": []},
            '"email" must be a string or null',
        ),
        (
            {"users": [user(1, actve=False)], "groups": []},
            "users[0] (id '00u1') has unknown key 'actve': allowed keys are",
        ),
        (
            {"users": [user(1), {"id": "00u1", "userName": "b"}], "groups": []},
            "users[1] (id '00u1') repeats the id of an earlier user",
        ),
        (
            {"users": [user(1), user(2, userName="USER1@example.com")], "groups": []},
            "userName 'USER1@example.com', already used by user '00u1'",
        ),
        (
            {"users": [], "groups": [{"id": "00g1"}]},
            "groups[0] (id '00g1') has no \"name\"",
        ),
        (
            {"users": [], "groups": [{"id": "00g1", "name": "A", "owner": "x"}]},
            "groups[0] (id '00g1') has unknown key 'owner'",
        ),
        (
            {
                "users": [],
                "groups": [{"id": "00g1", "name": "A"}, {"id": "00g1", "name": "B"}],
            },
            "groups[1] (id '00g1') repeats the id of an earlier group",
        ),
        (
            {"users": [user(1)], "groups": [{"id": "00u1", "name": "A"}]},
            "groups[0] (id '00u1') has the id of a user",
        ),
        (
            {"users": [], "groups": [{"id": "00g1", "name": "A", "members": "00u1"}]},
            '"members" must be a list of user or group ids',
        ),
        (
            {"users": [], "groups": [{"id": "00g1", "name": "A", "members": [1]}]},
            '"members" must be a list of user or group ids',
        ),
        (
            {"users": [], "groups": [{"id": "00g1", "name": "A", "members": ["00u9"]}]},
            "group '00g1' ('A') lists member '00u9', which is neither a user id nor "
            "a group id: add that user or group, or remove the member",
        ),
    ],
)
async def test_directory_invalid_entry(
    write_directory: WriteDirectory, document: Any, expected: str
) -> None:
    path = write_directory(document)

    message = await config_error(path)

    assert message.startswith(f"directory file {path}: ")
    assert expected in message
