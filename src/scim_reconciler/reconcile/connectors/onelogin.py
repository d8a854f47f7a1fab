"""OneLogin connector: roles and their users through the OneLogin API (v2).

OneLogin gives each user one group but any number of roles, so roles are what
mappings name as groups. Requests: ``GET /api/2/roles/{id}`` or
``GET /api/2/roles?name=...`` to resolve a role, then
``GET /api/2/roles/{id}/users`` page by page (``After-Cursor`` header), and
for each page one ``GET /api/2/users?user_ids=...`` for the users' details,
never one request per user.

Authentication: client credentials at ``/auth/oauth2/v2/token`` on the
account's subdomain (or the regional ``api.us``/``api.eu`` host).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from scim_reconciler.errors import (
    GroupNotFoundError,
)
from scim_reconciler.reconcile.connectors.auth import ClientCredentials
from scim_reconciler.reconcile.connectors.base import Connector, MemberPage
from scim_reconciler.reconcile.connectors.http import (
    HttpSettings,
    IdpHttp,
    JsonResponse,
    Timing,
    new_client,
    only_match,
)
from scim_reconciler.reconcile.connectors.idp_settings import OneLoginSettings
from scim_reconciler.reconcile.connectors.profile import (
    IdpProfile,
    RateLimit,
    int_header,
    json_body,
)
from scim_reconciler.reconcile.model import IdpGroup, IdpUser

logger = logging.getLogger(__name__)

USER_FIELDS = ("id", "username", "email", "firstname", "lastname", "status", "state")

# User status codes of the OneLogin API. Locked (3), password expired (4),
# awaiting password reset (5) and security questions required (8) are active
# accounts that must act before they can log in.
_STATUS_NAMES = {
    0: "unactivated",
    1: "active",
    2: "suspended",
    3: "locked",
    4: "password expired",
    5: "awaiting password reset",
    7: "password pending",
    8: "security questions required",
}
_ACTIVE_STATUSES = {1, 3, 4, 5, 8}
# User state: only approved (1) users are licensed to log in. The others are
# unapproved (0), rejected (2) and unlicensed (3).
_APPROVED_STATE = 1


class OneLoginProfile(IdpProfile):
    name = "OneLogin"
    credential_fix = (
        "create a new API credential (Developers > API Credentials) and update "
        "the connector configuration"
    )
    permission_fix = (
        "use an API credential with the Read Users scope (or Read All), which "
        "can read roles and users"
    )

    def error_detail(self, response: httpx.Response) -> str | None:
        body = json_body(response)
        if isinstance(body, dict) and isinstance(body.get("status"), dict):
            message = body["status"].get("message")  # the v1 error envelope
            if isinstance(message, str):
                return message
        return super().error_detail(response)

    def retry_after(self, response: httpx.Response, now: float) -> float | None:
        if response.status_code == 429:
            reset = int_header(response, "X-RateLimit-Reset")
            if reset is not None:
                return float(max(reset, 0))
        return super().retry_after(response, now)

    def rate_limit(self, response: httpx.Response, now: float) -> RateLimit | None:
        remaining = int_header(response, "X-RateLimit-Remaining")
        reset = int_header(response, "X-RateLimit-Reset")
        if remaining is None or reset is None:
            return None
        # X-RateLimit-Reset is the seconds left in the window, not an epoch time.
        return RateLimit(
            remaining, now + reset, int_header(response, "X-RateLimit-Limit")
        )


def onelogin_user_active(
    status: int | None, state: int | None, settings: OneLoginSettings
) -> bool:
    """Map a OneLogin user's state and status to active or inactive."""
    if state is not None and state != _APPROVED_STATE:
        return False
    if status in _ACTIVE_STATUSES:
        return True
    if status == 0:
        return settings.unactivated_is_active
    if status == 7:
        return settings.password_pending_is_active
    if status not in _STATUS_NAMES:
        logger.warning("Unknown OneLogin user status %r counts as inactive", status)
    return False


def _describe_status(status: int | None, state: int | None) -> str:
    text = f"status={status}"
    if status in _STATUS_NAMES:
        text += f" ({_STATUS_NAMES[status]})"
    if state is not None and state != _APPROVED_STATE:
        text += f", state={state} (not approved)"
    return text


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class OneLoginConnector(Connector):
    """Reads roles and their users from one OneLogin account."""

    kind = "onelogin"

    def __init__(
        self,
        settings: OneLoginSettings,
        secrets: dict[str, str],
        *,
        client: httpx.AsyncClient | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.settings = settings
        self.base_url = httpx.URL(settings.api_base_url())
        http_settings = HttpSettings.from_config(settings)
        self._owns_client = client is None
        self.timing = timing or Timing()
        auth = ClientCredentials(
            str(self.base_url.join("/auth/oauth2/v2/token")),
            settings.client_id,
            method="client_secret_post",
            client_secret=secrets["client_secret"],
            clock=self.timing.clock,
        )
        self.http = IdpHttp(
            OneLoginProfile(),
            client or new_client(http_settings),
            http_settings,
            auth=auth,
            timing=self.timing,
        )

    @property
    def nested_groups_flattened(self) -> bool:
        # Roles cannot contain roles, so no member is ever left out.
        return True

    async def resolve_group(self, reference: str) -> IdpGroup:
        if reference.isdigit():
            try:
                response = await self.http.get_json(
                    self.base_url.join(f"/api/2/roles/{reference}"),
                    not_found=f"OneLogin has no role with id {reference}",
                )
                return _role_of(response.body)
            except GroupNotFoundError:
                pass  # a role may also be named like an id

        matches: list[IdpGroup] = []
        params: dict[str, str | int] = {
            "name": reference,
            "limit": self.settings.page_size,
        }
        async for response in self._pages(self.base_url.join("/api/2/roles"), params):
            matches.extend(
                role
                for role in map(
                    _role_of, self.http.list_body(response.body, "role search")
                )
                if role.name == reference
            )
        return only_match(
            matches,
            reference,
            idp="OneLogin",
            noun="role",
            fix="map the role by its id instead",
        )

    async def members(self, group: IdpGroup) -> AsyncIterator[MemberPage]:
        url = self.base_url.join(f"/api/2/roles/{group.id}/users")
        params: dict[str, str | int] = {"limit": self.settings.page_size}
        not_found = f"OneLogin role {group.name!r} ({group.id}) no longer exists"
        async for response in self._pages(url, params, not_found=not_found):
            listed = self.http.list_body(response.body, f"users of role {group.id}")
            ids = [str(item["id"]) for item in listed]
            yield await self._users(ids) if ids else []

    async def _users(self, ids: list[str]) -> MemberPage:
        """Fetch the details of up to one page of users in one listing."""
        params: dict[str, str | int] = {
            "user_ids": ",".join(ids),
            "fields": ",".join(USER_FIELDS),
            "limit": self.settings.page_size,
        }
        found: dict[str, IdpUser] = {}
        async for response in self._pages(self.base_url.join("/api/2/users"), params):
            for item in self.http.list_body(response.body, "user details"):
                user = self._user_of(item)
                found[user.id] = user
        missing = [user_id for user_id in ids if user_id not in found]
        if missing:
            # A user deleted between the two requests is no member any more.
            logger.warning(
                "OneLogin returned no details for %d role members (first: %s); "
                "they were probably deleted meanwhile",
                len(missing),
                missing[0],
            )
        return [found[user_id] for user_id in ids if user_id in found]

    async def _pages(
        self,
        url: httpx.URL,
        params: dict[str, str | int],
        *,
        not_found: str | None = None,
    ) -> AsyncIterator[JsonResponse]:
        """Yield each page of a listing, following the After-Cursor header."""
        cursor: str | None = None
        while True:
            page_params = dict(params)
            if cursor:
                page_params["cursor"] = cursor
            response = await self.http.get_json(url, page_params, not_found=not_found)
            yield response
            cursor = response.headers.get("After-Cursor") or None
            if cursor is None:
                return

    def _user_of(self, item: Any) -> IdpUser:
        status = _int_or_none(item.get("status"))
        state = _int_or_none(item.get("state"))
        return IdpUser(
            id=str(item["id"]),
            user_name=str(item.get("username") or item.get("email") or item["id"]),
            email=item.get("email") or None,
            given_name=item.get("firstname") or None,
            family_name=item.get("lastname") or None,
            active=onelogin_user_active(status, state, self.settings),
            status=_describe_status(status, state),
        )

    async def check(self) -> list[str]:
        return await self.http.check_access(
            [
                (self.base_url.join("/api/2/roles"), {"limit": 1}, "list roles"),
                (self.base_url.join("/api/2/users"), {"limit": 1}, "read users"),
            ]
        )

    async def close(self) -> None:
        if self._owns_client:
            await self.http.client.aclose()


def _role_of(item: Any) -> IdpGroup:
    return IdpGroup(id=str(item["id"]), name=str(item.get("name") or item["id"]))
