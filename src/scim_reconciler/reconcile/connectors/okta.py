"""Okta connector: groups and their members through the Okta management API.

Requests: ``GET /api/v1/groups/{id}`` or ``GET /api/v1/groups?search=...`` to
resolve a group, then ``GET /api/v1/groups/{id}/users?limit=N`` and each
``Link: <...>; rel="next"`` as given, to the last page. Okta groups cannot
contain groups, so every member is a user.

Authentication: an API token (``Authorization: SSWS <token>``), or an OAuth
service app that signs a JWT with its private key (``private_key_jwt``) for a
token with the scopes okta.groups.read and okta.users.read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

from scim_reconciler.errors import (
    GroupNotFoundError,
)
from scim_reconciler.reconcile.connectors.auth import (
    Authenticator,
    ClientCredentials,
    StaticAuthorization,
    load_private_key,
)
from scim_reconciler.reconcile.connectors.base import Connector, MemberPage
from scim_reconciler.reconcile.connectors.http import (
    HttpSettings,
    IdpHttp,
    Timing,
    new_client,
    only_match,
)
from scim_reconciler.reconcile.connectors.idp_settings import OktaSettings
from scim_reconciler.reconcile.connectors.profile import (
    IdpProfile,
    RateLimit,
    int_header,
    json_body,
    path_template,
    server_clock_offset,
)
from scim_reconciler.reconcile.model import IdpGroup, IdpUser

logger = logging.getLogger(__name__)

# Okta group ids are "00g" and 17 more letters or digits. Shorter ones, as
# directory files and the simulator use, are tried as ids too, then as names.
_GROUP_ID = re.compile(r"^00g[A-Za-z0-9]+$")

# User status (Okta's UserStatus enum) to active. STAGED and PROVISIONED are
# settings; any status Okta adds later counts as inactive.
_ACTIVE_STATUSES = {"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"}
_INACTIVE_STATUSES = {"SUSPENDED", "DEPROVISIONED"}

# Okta error codes that mean a missing permission although the status is 401:
# E0000006 (no permission for the action), E0000015 (feature not available).
_PERMISSION_ERROR_CODES = {"E0000006", "E0000015"}


class OktaProfile(IdpProfile):
    name = "Okta"
    credential_fix = (
        "create a new API token (Security > API > Tokens) or check the service "
        "app's client id and key, then update the connector configuration"
    )
    permission_fix = (
        "give the API token's admin the Read-only Administrator role, or grant "
        "the service app the scopes okta.groups.read and okta.users.read and a "
        "read-only admin role"
    )

    def error_detail(self, response: httpx.Response) -> str | None:
        body = json_body(response)
        if isinstance(body, dict) and isinstance(body.get("errorSummary"), str):
            code = body.get("errorCode")
            prefix = f"{code} " if isinstance(code, str) else ""
            return f"{prefix}{body['errorSummary']}"
        return super().error_detail(response)

    def is_permission_denied(self, response: httpx.Response) -> bool:
        if response.status_code == 403:
            return True
        body = json_body(response)
        return (
            isinstance(body, dict) and body.get("errorCode") in _PERMISSION_ERROR_CODES
        )

    def retry_after(self, response: httpx.Response, now: float) -> float | None:
        """Wait until X-Rate-Limit-Reset on a 429; Okta sends no Retry-After."""
        if response.status_code == 429:
            limit = self.rate_limit(response, now)
            if limit is not None:
                return max(0.0, limit.reset_at - now)
        return super().retry_after(response, now)

    def rate_limit(self, response: httpx.Response, now: float) -> RateLimit | None:
        remaining = int_header(response, "X-Rate-Limit-Remaining")
        reset = int_header(response, "X-Rate-Limit-Reset")
        if remaining is None or reset is None:
            return None
        # X-Rate-Limit-Reset is epoch seconds on Okta's clock.
        reset_at = reset - server_clock_offset(response, now)
        return RateLimit(
            remaining, reset_at, int_header(response, "X-Rate-Limit-Limit")
        )

    def rate_limit_bucket(self, url: httpx.URL) -> str:
        # Okta limits each endpoint family separately.
        return path_template(url)


def okta_status_active(status: str, settings: OktaSettings) -> bool:
    """Map an Okta user status to active or inactive."""
    if status in _ACTIVE_STATUSES:
        return True
    if status == "STAGED":
        return settings.staged_is_active
    if status == "PROVISIONED":
        return settings.provisioned_is_active
    if status not in _INACTIVE_STATUSES:
        logger.warning("Unknown Okta user status %r counts as inactive", status)
    return False


def _group_of(item: Any) -> IdpGroup:
    profile = item.get("profile") or {}
    return IdpGroup(id=str(item["id"]), name=str(profile.get("name") or item["id"]))


class OktaConnector(Connector):
    """Reads groups and members from one Okta org."""

    kind = "okta"

    def __init__(
        self,
        settings: OktaSettings,
        secrets: dict[str, str],
        *,
        client: httpx.AsyncClient | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.settings = settings
        self.base_url = httpx.URL(settings.base_url)
        http_settings = HttpSettings.from_config(settings)
        self._owns_client = client is None
        self.timing = timing or Timing()
        self.http = IdpHttp(
            OktaProfile(),
            client or new_client(http_settings),
            http_settings,
            auth=self._authenticator(settings, secrets),
            timing=self.timing,
        )

    def _authenticator(
        self, settings: OktaSettings, secrets: dict[str, str]
    ) -> Authenticator:
        if settings.api_token is not None:
            return StaticAuthorization(f"SSWS {secrets['api_token']}")
        assert settings.client_id is not None
        key = load_private_key(secrets["private_key"], "private_key")
        header = {"kid": settings.key_id} if settings.key_id else None
        if header is None and key.kid:
            header = {"kid": key.kid}
        # NOTE: service apps that require DPoP-bound tokens are not supported;
        # turn off "Require DPoP header in token requests" on the app.
        return ClientCredentials(
            f"{settings.base_url}/oauth2/v1/token",
            settings.client_id,
            method="private_key_jwt",
            private_key=key,
            jwt_header=header,
            scope=" ".join(settings.scopes),
            clock=self.timing.clock,
        )

    @property
    def nested_groups_flattened(self) -> bool:
        # Okta groups cannot contain groups, so no member is ever left out.
        return True

    async def resolve_group(self, reference: str) -> IdpGroup:
        if _GROUP_ID.match(reference):
            try:
                response = await self.http.get_json(
                    self.base_url.join(f"/api/v1/groups/{reference}"),
                    not_found=f"Okta has no group with id {reference}",
                )
                return _group_of(response.body)
            except GroupNotFoundError:
                pass  # a group may also be named like an id

        escaped = reference.replace("\\", "\\\\").replace('"', '\\"')
        matches = [
            group
            async for group in self._groups(f'profile.name eq "{escaped}"')
            if group.name == reference
        ]
        return only_match(
            matches,
            reference,
            idp="Okta",
            noun="group",
            fix="map the group by its id instead",
        )

    async def _groups(self, search: str) -> AsyncIterator[IdpGroup]:
        url: httpx.URL | None = self.base_url.join("/api/v1/groups")
        params: dict[str, str | int] | None = {"search": search}
        while url is not None:
            response = await self.http.get_json(url, params)
            for item in self.http.list_body(response.body, "group search"):
                yield _group_of(item)
            url, params = self._next(response.links), None

    async def members(self, group: IdpGroup) -> AsyncIterator[MemberPage]:
        url: httpx.URL | None = self.base_url.join(f"/api/v1/groups/{group.id}/users")
        params: dict[str, str | int] | None = {"limit": self.settings.page_size}
        while url is not None:
            response = await self.http.get_json(
                url,
                params,
                not_found=f"Okta group {group.name!r} ({group.id}) no longer exists",
            )
            items = self.http.list_body(response.body, f"members of group {group.id}")
            yield [self._user_of(item) for item in items]
            url, params = self._next(response.links), None

    def _next(self, links: dict[str, dict[str, str]]) -> httpx.URL | None:
        link = links.get("next", {}).get("url")
        return self.http.same_origin(link, self.base_url) if link else None

    def _user_of(self, item: Any) -> IdpUser:
        profile = item.get("profile") or {}
        status = str(item.get("status") or "")
        return IdpUser(
            id=str(item["id"]),
            user_name=str(profile.get("login") or profile.get("email") or item["id"]),
            email=profile.get("email"),
            given_name=profile.get("firstName"),
            family_name=profile.get("lastName"),
            display_name=profile.get("displayName"),
            active=okta_status_active(status, self.settings),
            status=status or None,
        )

    async def check(self) -> list[str]:
        return await self.http.check_access(
            [
                (self.base_url.join("/api/v1/groups"), {"limit": 1}, "list groups"),
                (self.base_url.join("/api/v1/users"), {"limit": 1}, "read users"),
            ]
        )

    async def close(self) -> None:
        if self._owns_client:
            await self.http.client.aclose()
