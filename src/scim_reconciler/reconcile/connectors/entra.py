"""Microsoft Entra ID connector: groups and members through Microsoft Graph.

Requests: ``GET /groups/{id}`` or ``GET /groups?$filter=displayName eq '...'``
to resolve a group, then ``GET /groups/{id}/transitiveMembers`` (nested groups
flattened, the default) or ``/members`` with ``$select`` and ``$top=999``,
following ``@odata.nextLink`` to the last page. Members are directory objects.
Users become ``IdpUser``. Devices, contacts, service principals, and nested
groups when not flattened, become ``NonUserMember``, which the run skips and
counts. Graph returns ``accountEnabled`` only when selected, so it always is.

Authentication: client credentials with a client secret or a certificate
(``private_key_jwt`` with the certificate's ``x5t`` thumbprint) at
``{login_url}/{tenant}/oauth2/v2.0/token``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx

from scim_reconciler.errors import (
    ConnectorUnavailableError,
    GroupNotFoundError,
)
from scim_reconciler.reconcile.connectors.auth import (
    ClientCredentials,
    certificate_thumbprint,
    load_private_key,
)
from scim_reconciler.reconcile.connectors.base import (
    Connector,
    MemberPage,
    NonUserMember,
)
from scim_reconciler.reconcile.connectors.http import (
    HttpSettings,
    IdpHttp,
    Timing,
    new_client,
    only_match,
)
from scim_reconciler.reconcile.connectors.idp_settings import EntraSettings
from scim_reconciler.reconcile.connectors.profile import IdpProfile, json_body
from scim_reconciler.reconcile.model import IdpGroup, IdpUser

_GUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_USER_TYPE = "#microsoft.graph.user"
_GROUP_TYPE = "#microsoft.graph.group"
USER_FIELDS = (
    "id",
    "userPrincipalName",
    "mail",
    "givenName",
    "surname",
    "displayName",
    "accountEnabled",
)


class EntraProfile(IdpProfile):
    name = "Microsoft Entra ID"
    credential_fix = (
        "check tenant_id and client_id, and create a new client secret or upload "
        "the certificate under the app registration's Certificates & secrets"
    )
    permission_fix = (
        "grant the app registration the Microsoft Graph application permissions "
        "GroupMember.Read.All and User.Read.All, then grant admin consent"
    )

    def error_detail(self, response: httpx.Response) -> str | None:
        body = json_body(response)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            code = error.get("code")
            message = error.get("message")
            return " ".join(str(part) for part in (code, message) if part)
        detail = super().error_detail(response)
        # Token endpoint descriptions continue with trace and correlation ids.
        return detail.splitlines()[0] if detail else None


def _escape_odata(value: str) -> str:
    return value.replace("'", "''")


class EntraConnector(Connector):
    """Reads groups and members from one Entra ID tenant."""

    kind = "entra"

    def __init__(
        self,
        settings: EntraSettings,
        secrets: dict[str, str],
        *,
        client: httpx.AsyncClient | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.settings = settings
        self.base_url = httpx.URL(settings.base_url + "/")
        http_settings = HttpSettings.from_config(settings)
        self._owns_client = client is None
        self.timing = timing or Timing()
        self.http = IdpHttp(
            EntraProfile(),
            client or new_client(http_settings),
            http_settings,
            auth=self._authenticator(settings, secrets),
            timing=self.timing,
        )

    def _authenticator(
        self, settings: EntraSettings, secrets: dict[str, str]
    ) -> ClientCredentials:
        token_url = f"{settings.login_url}/{settings.tenant_id}/oauth2/v2.0/token"
        if settings.client_secret is not None:
            return ClientCredentials(
                token_url,
                settings.client_id,
                method="client_secret_post",
                client_secret=secrets["client_secret"],
                scope=settings.scope,
                clock=self.timing.clock,
            )
        pem = secrets["client_certificate"]
        return ClientCredentials(
            token_url,
            settings.client_id,
            method="private_key_jwt",
            private_key=load_private_key(pem, "client_certificate"),
            jwt_header={"x5t": certificate_thumbprint(pem, "client_certificate")},
            scope=settings.scope,
            clock=self.timing.clock,
        )

    def _url(self, path: str) -> httpx.URL:
        return self.base_url.join(path)

    @property
    def nested_groups_flattened(self) -> bool:
        return self.settings.membership == "transitive"

    async def resolve_group(self, reference: str) -> IdpGroup:
        if _GUID.match(reference):
            try:
                response = await self.http.get_json(
                    self._url(f"groups/{reference}"),
                    {"$select": "id,displayName"},
                    not_found=f"Entra ID has no group with id {reference}",
                )
                return _group_of(response.body)
            except GroupNotFoundError:
                pass  # a group may also be named like an id

        matches = [
            group
            async for group in self._groups_named(reference)
            if group.name == reference
        ]
        return only_match(
            matches,
            reference,
            idp="Entra ID",
            noun="group",
            fix="map the group by its object id instead",
        )

    async def _groups_named(self, name: str) -> AsyncIterator[IdpGroup]:
        url: httpx.URL | None = self._url("groups")
        params: dict[str, str | int] | None = {
            "$filter": f"displayName eq '{_escape_odata(name)}'",
            "$select": "id,displayName",
        }
        while url is not None:
            response = await self.http.get_json(url, params)
            for item in _value_of(response.body, "group search"):
                yield _group_of(item)
            url, params = self._next(response.body), None

    async def members(self, group: IdpGroup) -> AsyncIterator[MemberPage]:
        relation = "transitiveMembers" if self.nested_groups_flattened else "members"
        url: httpx.URL | None = self._url(f"groups/{group.id}/{relation}")
        params: dict[str, str | int] | None = {
            "$select": ",".join(USER_FIELDS),
            "$top": self.settings.page_size,
        }
        not_found = f"Entra ID group {group.name!r} ({group.id}) no longer exists"
        while url is not None:
            response = await self.http.get_json(url, params, not_found=not_found)
            page: MemberPage = []
            for item in _value_of(response.body, f"members of group {group.id}"):
                member = self._member_of(item)
                if member is not None:
                    page.append(member)
            yield page
            url, params = self._next(response.body), None

    def _member_of(self, item: Any) -> IdpUser | NonUserMember | None:
        odata_type = str(item.get("@odata.type") or "")
        if odata_type == _USER_TYPE or (not odata_type and "userPrincipalName" in item):
            enabled = item.get("accountEnabled")
            return IdpUser(
                id=str(item["id"]),
                user_name=str(item.get("userPrincipalName") or item["id"]),
                email=item.get("mail"),
                given_name=item.get("givenName"),
                family_name=item.get("surname"),
                display_name=item.get("displayName"),
                active=enabled is not False,
                status=f"accountEnabled={str(enabled).lower()}",
            )
        if odata_type == _GROUP_TYPE and self.nested_groups_flattened:
            return None  # transitiveMembers lists the nested group's users too
        kind = odata_type.removeprefix("#microsoft.graph.") or "unknown"
        return NonUserMember(id=str(item.get("id", "")), type=kind)

    def _next(self, body: Any) -> httpx.URL | None:
        link = body.get("@odata.nextLink") if isinstance(body, dict) else None
        return self.http.same_origin(link, self.base_url) if link else None

    async def check(self) -> list[str]:
        return await self.http.check_access(
            [
                (self._url("groups"), {"$top": 1, "$select": "id"}, "list groups"),
                (
                    self._url("users"),
                    {"$top": 1, "$select": "id,accountEnabled"},
                    "read users",
                ),
            ]
        )

    async def close(self) -> None:
        if self._owns_client:
            await self.http.client.aclose()


def _group_of(item: Any) -> IdpGroup:
    return IdpGroup(id=str(item["id"]), name=str(item.get("displayName") or item["id"]))


def _value_of(body: Any, listing: str) -> list[Any]:
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, list):
        raise ConnectorUnavailableError(
            f"Microsoft Graph returned no 'value' list for {listing}. Check "
            "base_url, and retry later if it persists."
        )
    return value
