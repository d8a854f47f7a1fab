"""The userName lookup, ``GET /Users?filter=userName eq "..."``, in one query.

IdPs send this lookup to find an existing account before they create one. The
general path authenticates in one session and lists in another, seven round
trips on PostgreSQL, with the filter parsed by scim2-models and every row
loaded into the ORM. This path recognizes the plain form of the filter and
reads the token, its organization, the user, its groups and its role grants in
one SELECT, run on the driver connection (``Database.fetch``). It builds the
document with the same ``documents.user_document`` as the general path, so
both return the same response, which tests/scim/test_lookup.py checks.

Every other request, and every lookup this path does not recognize, goes
through the general path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from scim2_models import SCIMException
from sqlalchemy import String, and_, bindparam, false, or_, select

from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import (
    Group,
    GroupMember,
    ManagedBy,
    Organization,
    Role,
    RoleMapping,
    ScimToken,
    User,
)
from scim_reconciler.scim import auth, documents
from scim_reconciler.scim.documents import Projection
from scim_reconciler.scim.filters import MAX_FILTER_LENGTH
from scim_reconciler.scim.paging import parse_page
from scim_reconciler.services.roles import EffectiveRole, RoleGrant, merge_grants
from scim_reconciler.services.tokens import hash_secret
from scim_reconciler.text import comparison_key

# The filter grammar (RFC 7644 §3.4.2.2) is case-insensitive in attribute names
# and operators and ignores whitespace between tokens. A string without
# backslash or control characters is its own value, so it needs no JSON
# decoding. Anything else, such as escapes or a schema URN before userName,
# takes the general path. re.ASCII keeps the case folding to ASCII letters,
# as the general path's parser has it: Unicode folding would read U+017F
# (long s) as "s".
_USER_NAME_FILTER = re.compile(
    r'[ \t\f\r\n]*username[ \t\f\r\n]+eq[ \t\f\r\n]+"([^"\\\x00-\x1f]*)"[ \t\f\r\n]*',
    re.IGNORECASE | re.ASCII,
)

# One row per (group, role mapping) pair of the user, and one row with NULL
# user columns when no visible user has the userName. No row means an unknown
# token. The joins repeat the conditions of users.visible_users,
# users._groups_of and roles_query.user_role_grants.
_LOOKUP_QUERY = (
    select(
        ScimToken.id,
        ScimToken.expires_at,
        ScimToken.revoked_at,
        ScimToken.last_used_at,
        Organization.slug,
        Organization.plan,
        User.id,
        User.active,
        User.attributes,
        User.version,
        User.created_at,
        User.last_modified,
        Group.id,
        Group.display_name,
        RoleMapping.role_slug,
        RoleMapping.grant,
        RoleMapping.object_ids,
        Role.name,
    )
    .select_from(ScimToken)
    .join(Organization, Organization.id == ScimToken.org_id)
    .outerjoin(
        User,
        and_(
            User.org_id == Organization.id,
            User.user_name_key == bindparam("user_name_key", type_=String),
            User.managed_by == bindparam("managed_by", type_=String),
            User.deleted.is_(false()),
        ),
    )
    .outerjoin(GroupMember, GroupMember.user_id == User.id)
    .outerjoin(Group, Group.id == GroupMember.group_id)
    .outerjoin(
        RoleMapping,
        and_(
            RoleMapping.org_id == Group.org_id,
            Group.org_id == Organization.id,
            or_(
                RoleMapping.group_key == Group.display_name_key,
                RoleMapping.group == Group.external_id,
            ),
        ),
    )
    .outerjoin(Role, Role.slug == RoleMapping.role_slug)
    .where(ScimToken.secret_hash == bindparam("secret_hash", type_=String))
    .order_by(Group.display_name_key)
)


@dataclass(frozen=True)
class FoundUser:
    """The stored columns of the user that a lookup found."""

    id: str
    active: bool
    attributes: dict[str, Any]
    version: int
    created_at: datetime
    last_modified: datetime


@dataclass(frozen=True)
class LookupParameters:
    """The query parameters of ``GET /Users``."""

    filter: str | None
    start_index: str | None
    count: str | None
    attributes: str | None
    excluded: str | None
    sort_by: str | None
    sort_order: str | None


def user_name_value(parameters: LookupParameters, max_results: int) -> str | None:
    """Return the userName that the request looks up, or None unless this
    path returns exactly what the general path would for the request.

    The general path must see invalid paging and sorting, because it checks
    them only after authentication.
    """
    text = parameters.filter
    if text is None or len(text) > MAX_FILTER_LENGTH:
        return None
    if parameters.sort_by is not None or parameters.sort_order is not None:
        return None
    matched = _USER_NAME_FILTER.fullmatch(text)
    if matched is None:
        return None
    try:
        page = parse_page(parameters.start_index, parameters.count, max_results)
    except SCIMException:
        return None
    if page.start_index != 1 or page.count == 0:
        return None
    return matched.group(1)


async def find_user(
    request: Request,
    database: Database,
    base_url: str,
    user_name: str,
    parameters: LookupParameters,
) -> list[dict[str, Any]]:
    """Authenticate the request and return the users it finds: none or one."""
    secret = auth.bearer_secret(request)
    rows = await database.fetch(
        _LOOKUP_QUERY,
        {
            "secret_hash": hash_secret(secret),
            "user_name_key": comparison_key(user_name),
            "managed_by": ManagedBy.idp.value,
        },
    )
    if not rows:
        raise auth.unknown_token(request)
    first = rows[0]
    state = auth.TokenState(
        token_id=first[0],
        expires_at=first[1],
        revoked_at=first[2],
        last_used_at=first[3],
        org_slug=first[4],
        plan=first[5],
    )
    await auth.admit(request, database, state)

    # Like the general path, check attributes and excludedAttributes only
    # after authentication.
    projection = documents.user_projection(parameters.attributes, parameters.excluded)
    if first[6] is None:
        return []
    return [_render(rows, base_url, projection)]


def _render(
    rows: list[tuple[Any, ...]], base_url: str, projection: Projection
) -> dict[str, Any]:
    first = rows[0]
    user = FoundUser(
        id=first[6],
        active=first[7],
        attributes=first[8],
        version=first[9],
        created_at=first[10],
        last_modified=first[11],
    )
    groups: dict[str, str] = {}
    grants: list[RoleGrant] = []
    role_names: dict[str, str] = {}
    for row in rows:
        group_id, display, role_slug, grant, object_ids, role_name = row[12:]
        if group_id is None:
            continue
        groups.setdefault(group_id, display)
        if role_slug is not None:
            grants.append(RoleGrant(role_slug, grant, frozenset(object_ids or ())))
        if role_name is not None:
            role_names[role_slug] = role_name
    roles: list[EffectiveRole] = merge_grants(grants, role_names) if grants else []
    document = documents.user_document(
        user,
        f"{base_url}/Users",
        f"{base_url}/Groups",
        list(groups.items()) if projection.wants("groups") else (),
        roles if projection.wants("roles") else (),
    )
    return projection.apply(document)
