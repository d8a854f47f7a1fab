"""Build SCIM response documents from stored rows.

A stored ``attributes`` document is what the SCIM model dumped in the response
context when the resource was written, so the usual response needs no model
validation: the service adds ``id``, ``meta`` and the computed attributes. Only
``attributes``/``excludedAttributes`` projections go through the model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from scim2_models import (
    Context,
    InvalidValueException,
    ResponseParameters,
    SCIMException,
)

from scim_reconciler.db.models import Group
from scim_reconciler.scim.schemas import GroupResource, UserResource
from scim_reconciler.services.roles import EffectiveRole


class StoredResource(Protocol):
    """The stored columns a User or Group document is built from."""

    @property
    def id(self) -> str: ...
    @property
    def attributes(self) -> dict[str, Any]: ...
    @property
    def version(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def last_modified(self) -> datetime: ...


class StoredUser(StoredResource, Protocol):
    @property
    def active(self) -> bool: ...


def etag(version: int) -> str:
    return f'W/"{version}"'


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _meta(resource_type: str, location: str, row: StoredResource) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "created": _timestamp(row.created_at),
        "lastModified": _timestamp(row.last_modified),
        "location": location,
        "version": etag(row.version),
    }


def user_document(
    row: StoredUser,
    users_url: str,
    groups_url: str,
    groups: Sequence[tuple[str, str]],
    roles: Sequence[EffectiveRole],
) -> dict[str, Any]:
    """Return the full SCIM User; ``groups`` contains (group id, displayName) pairs."""
    document: dict[str, Any] = {"schemas": row.attributes.get("schemas"), "id": row.id}
    document.update(
        (key, value) for key, value in row.attributes.items() if key != "schemas"
    )
    document["active"] = row.active
    if groups:
        document["groups"] = [
            {
                "value": group_id,
                "$ref": f"{groups_url}/{group_id}",
                "display": display,
                "type": "direct",
            }
            for group_id, display in groups
        ]
    if roles:
        document["roles"] = [
            {"value": role.role_slug, "display": role.name, "type": role.grant.value}
            for role in roles
        ]
    document["meta"] = _meta("User", f"{users_url}/{row.id}", row)
    return document


def group_document(
    row: Group,
    users_url: str,
    groups_url: str,
    members: Sequence[tuple[str, str | None]] | None,
) -> dict[str, Any]:
    """Return the full SCIM Group; ``members`` contains (user id, display) pairs.

    ``members`` is None when the client excluded them, so they were not read.
    """
    document: dict[str, Any] = {"schemas": row.attributes.get("schemas"), "id": row.id}
    document.update(
        (key, value) for key, value in row.attributes.items() if key != "schemas"
    )
    document["displayName"] = row.display_name
    if members:
        document["members"] = [
            _member(users_url, user_id, display) for user_id, display in members
        ]
    document["meta"] = _meta("Group", f"{groups_url}/{row.id}", row)
    return document


def _member(users_url: str, user_id: str, display: str | None) -> dict[str, Any]:
    member = {"value": user_id, "$ref": f"{users_url}/{user_id}", "type": "User"}
    if display:
        member["display"] = display
    return member


class Projection:
    """The ``attributes`` and ``excludedAttributes`` of a request (RFC 7644 §3.9)."""

    def __init__(
        self,
        model: type[Any],
        attributes: str | None,
        excluded_attributes: str | None,
    ) -> None:
        self.model = model
        self.attributes = attributes or None
        self.excluded = excluded_attributes or None
        self.parameters: ResponseParameters[Any] | None = None
        if self.attributes or self.excluded:
            try:
                self.parameters = ResponseParameters[model].model_validate(  # type: ignore[valid-type]
                    {
                        "attributes": self.attributes,
                        "excludedAttributes": self.excluded,
                    }
                )
            except SCIMException:
                raise
            except ValueError as exc:
                raise InvalidValueException(
                    detail="invalid attributes or excludedAttributes "
                    f"parameter: {_first_error(exc)}"
                ) from None

    def wants(self, name: str) -> bool:
        """Tell whether a computed attribute is worth reading for this request."""
        folded = name.lower()
        if self.excluded and folded in _names(self.excluded):
            return False
        if self.attributes:
            return folded in _names(self.attributes)
        return True

    def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        if self.parameters is None:
            return document
        resource = self.model.model_validate(
            document, scim_ctx=Context.RESOURCE_QUERY_RESPONSE
        )
        dumped: dict[str, Any] = resource.model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
            response_parameters=self.parameters,
        )
        return dumped


def _names(parameter: str) -> set[str]:
    names = set()
    for item in parameter.split(","):
        item = item.strip().lower()
        # "urn:...:User:groups" and "groups.display" both name "groups".
        names.add(item.rsplit(":", 1)[-1].split(".", 1)[0])
    return names


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0].get("msg", exc))
    return str(exc)


def user_projection(attributes: str | None, excluded: str | None) -> Projection:
    return Projection(UserResource, attributes, excluded)


def group_projection(attributes: str | None, excluded: str | None) -> Projection:
    return Projection(GroupResource, attributes, excluded)
