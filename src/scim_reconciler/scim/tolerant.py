"""Normalize what real IdPs send before the strict SCIM models read it.

Okta, Microsoft Entra ID and OneLogin send requests that are not always
RFC-perfect; each rule below accepts one shape they are known to send:

- booleans as strings (``"active": "False"``, any case), from Entra ID;
- the enterprise ``manager`` as a bare id string or as ``{"value": id}`` with no
  ``$ref``, from Entra ID;
- schema URNs the service does not know (Entra's Group create carries a
  Microsoft one, Okta sends custom extensions): dropped with their attributes;
- a resource or PatchOp without ``schemas``.

One more rule is defensive, because no IdP is known to need it: a path-less
PATCH value with value-filtered keys such as ``emails[type eq "work"].value``
is split into operations of their own, since scim2-models would drop those keys
without an error.

Anything else that is wrong is left for the models to reject.
"""

from __future__ import annotations

from typing import Any

from scim2_models import InvalidSyntaxException, InvalidValueException

from scim_reconciler.scim.schemas import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
)

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BOOLEAN_ATTRIBUTES = frozenset({"active", "primary"})
_ENTERPRISE_PREFIX = ENTERPRISE_SCHEMA.lower() + ":"


def parse_boolean(name: str, value: Any) -> Any:
    """Turn "true"/"false" in any case into a bool; reject other strings."""
    if not isinstance(value, str):
        if isinstance(value, bool) or value is None:
            return value
        raise InvalidValueException(
            detail=f"attribute {name!r} must be a boolean, got {value!r}"
        )
    folded = value.strip().lower()
    if folded in ("true", "false"):
        return folded == "true"
    raise InvalidValueException(
        detail=f'attribute {name!r} must be a boolean (true or false), got "{value}"'
    )


def _normalize_booleans(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.lower() in BOOLEAN_ATTRIBUTES:
                node[key] = parse_boolean(key, value)
            else:
                _normalize_booleans(value)
    elif isinstance(node, list):
        for item in node:
            _normalize_booleans(item)
    return node


def _manager(value: Any, users_url: str) -> Any:
    if isinstance(value, str):
        value = {"value": value} if value else None
    if isinstance(value, dict):
        manager_id = value.get("value")
        if not manager_id:
            return None
        if not value.get("$ref"):
            value = {**value, "$ref": f"{users_url}/{manager_id}"}
    return value


def _normalize_enterprise(body: dict[str, Any], users_url: str) -> None:
    for key in list(body):
        if key.lower() == ENTERPRISE_SCHEMA.lower() and isinstance(body[key], dict):
            extension = body[key]
            for name in list(extension):
                if name.lower() == "manager":
                    extension[name] = _manager(extension[name], users_url)


def _require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidSyntaxException(
            detail=f"the request body must be a JSON object holding a {what}"
        )
    return body


def _known_schemas(
    body: dict[str, Any], core: str, extensions: tuple[str, ...]
) -> None:
    known = {core.lower(): core, **{ext.lower(): ext for ext in extensions}}
    listed = body.get("schemas")
    kept = [
        known[str(urn).lower()] for urn in listed or [] if str(urn).lower() in known
    ]
    for key in list(body):
        if ":" in key and key.lower() in known and known[key.lower()] not in kept:
            kept.append(known[key.lower()])
        elif ":" in key and key.lower() not in known:
            # An extension the service does not define, such as Okta's custom one.
            del body[key]
    if core not in kept:
        kept.insert(0, core)
    body["schemas"] = kept


def normalize_user(body: Any, users_url: str) -> dict[str, Any]:
    user = _require_object(body, "User")
    _known_schemas(user, USER_SCHEMA, (ENTERPRISE_SCHEMA,))
    _normalize_booleans(user)
    _normalize_enterprise(user, users_url)
    return user


def normalize_group(body: Any) -> dict[str, Any]:
    group = _require_object(body, "Group")
    _known_schemas(group, GROUP_SCHEMA, ())
    return group


def _normalize_patch_value(path: str | None, value: Any, users_url: str) -> Any:
    if path is None:
        if isinstance(value, dict):
            for key in list(value):
                last = key.rsplit(":", 1)[-1].rsplit(".", 1)[-1].lower()
                if last in BOOLEAN_ATTRIBUTES:
                    value[key] = parse_boolean(key, value[key])
                elif last == "manager" and key.lower().startswith(_ENTERPRISE_PREFIX):
                    value[key] = _manager(value[key], users_url)
                else:
                    _normalize_booleans(value[key])
            _normalize_enterprise(value, users_url)
        return value
    last = path.rsplit(":", 1)[-1].rsplit(".", 1)[-1].lower()
    if last in BOOLEAN_ATTRIBUTES:
        return parse_boolean(path, value)
    if last == "manager":
        return _manager(value, users_url)
    return _normalize_booleans(value)


def normalize_patch(body: Any, users_url: str) -> dict[str, Any]:
    patch = _require_object(body, "PatchOp")
    patch.setdefault("schemas", [PATCH_OP_SCHEMA])
    operations = next(
        (value for key, value in patch.items() if key.lower() == "operations"), None
    )
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntaxException(
            detail='a PatchOp needs a non-empty "Operations" list'
        )
    patch["Operations"] = operations
    for key in [
        key for key in patch if key.lower() == "operations" and key != "Operations"
    ]:
        del patch[key]
    for operation in operations:
        if not isinstance(operation, dict):
            raise InvalidSyntaxException(
                detail=f"each PatchOp operation must be an object, got {operation!r}"
            )
        path = operation.get("path")
        if isinstance(path, str) and path.rsplit(":", 1)[-1].lower() == "manager":
            # Entra sends path "manager" as well as the qualified form.
            operation["path"] = f"{ENTERPRISE_SCHEMA}:manager"
        if "value" in operation:
            operation["value"] = _normalize_patch_value(
                operation.get("path"), operation["value"], users_url
            )
    patch["Operations"] = [
        split for operation in operations for split in _split_filtered_keys(operation)
    ]
    return patch


def _split_filtered_keys(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """Move each value-filtered key of a path-less value to an operation of its own.

    scim2-models reads the keys of a path-less value as attribute names and
    ignores a key with a filter, so the requested change would be lost.
    """
    value = operation.get("value")
    if operation.get("path") is not None or not isinstance(value, dict):
        return [operation]
    filtered = [key for key in value if "[" in key]
    if not filtered:
        return [operation]
    rest = {key: item for key, item in value.items() if key not in filtered}
    split = [{**operation, "value": rest}] if rest else []
    split.extend({**operation, "path": key, "value": value[key]} for key in filtered)
    return split
