"""The interface every connector implements.

A connector resolves the groups that mappings name and streams their members
page by page. It raises only the ``ConnectorError`` subclasses of
``scim_reconciler.errors``; any of them makes the run fail with nothing applied.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass

from scim_reconciler.reconcile.model import IdpGroup, IdpUser


@dataclass(frozen=True)
class NonUserMember:
    """A member that is not a user: a device, contact, service principal or group."""

    id: str
    type: str


MemberPage = list[IdpUser | NonUserMember]


class Connector(abc.ABC):
    """Reads one organization's IdP."""

    kind: str

    @property
    @abc.abstractmethod
    def nested_groups_flattened(self) -> bool:
        """Whether members of nested groups are listed as members of the parent."""

    @abc.abstractmethod
    async def resolve_group(self, reference: str) -> IdpGroup:
        """Find a group by its IdP id or, failing that, its exact name.

        Raises GroupNotFoundError when neither matches.
        """

    @abc.abstractmethod
    def members(self, group: IdpGroup) -> AsyncIterator[MemberPage]:
        """Yield the group's members one page at a time, to the last page."""

    async def check(self) -> list[str]:
        """Return one line per problem with the credential or permissions."""
        return []

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""
