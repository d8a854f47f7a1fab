"""A simulated Microsoft Graph (v1.0) with its Entra ID token endpoint.

Groups, ``/members`` (nested groups as group objects) and
``/transitiveMembers`` (nested groups flattened, the groups themselves listed
too), ``$select``, ``$top`` and ``@odata.nextLink`` paging. Graph sends no
rate-limit headers. Past the limit it responds 429 with a fractional
``Retry-After`` in seconds.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scim_reconciler.reconcile.model import IdpUser
from scim_reconciler.simulator.base import (
    IdpSimulator,
    bearer_token,
    decode_offset,
    encode_offset,
    form_fields,
    json_response,
    page_limit,
)

GRAPH_PREFIX = "/v1.0"
_FILTER_NAME = re.compile(r"^displayName eq '((?:[^']|'')*)'$")
_ERROR_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}
# Properties of a user that Graph returns when no $select is given;
# accountEnabled is not among them.
_DEFAULT_USER_FIELDS = (
    "id",
    "userPrincipalName",
    "mail",
    "givenName",
    "surname",
    "displayName",
)


def graph_user(user: IdpUser, fields: list[str] | None) -> dict[str, Any]:
    everything = {
        "id": user.id,
        "userPrincipalName": user.user_name,
        "mail": user.email,
        "givenName": user.given_name,
        "surname": user.family_name,
        "displayName": user.display_name,
        "accountEnabled": user.active,
    }
    chosen = fields or _DEFAULT_USER_FIELDS
    return {
        "@odata.type": "#microsoft.graph.user",
        **{key: everything[key] for key in chosen if key in everything},
    }


class EntraSimulator(IdpSimulator):
    name = "entra"
    max_page_size = 999
    default_rate_limit = 2000
    default_window_seconds = 10.0
    default_token_lifetime = 3599

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tenant_id = str(uuid.uuid4())
        self.client_id = str(uuid.uuid4())

    def routes(self) -> list[Route]:
        return [
            Route(f"{GRAPH_PREFIX}/groups", self.list_groups),
            Route(f"{GRAPH_PREFIX}/groups/{{group_id}}", self.get_group),
            Route(f"{GRAPH_PREFIX}/groups/{{group_id}}/members", self.members),
            Route(
                f"{GRAPH_PREFIX}/groups/{{group_id}}/transitiveMembers", self.members
            ),
            Route(f"{GRAPH_PREFIX}/users", self.list_users),
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
        ]

    def connector_config(self, base_url: str) -> dict[str, Any]:
        return {
            "kind": "entra",
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "base_url": base_url + GRAPH_PREFIX,
            "login_url": base_url,
        }

    def is_authorized(self, request: Request) -> bool:
        token = bearer_token(request)
        return token is not None and self.tokens.is_valid(token)

    def error(self, status: int, message: str) -> Response:
        if status == 401:
            message = "Access token has expired or is not yet valid."
        body = {
            "error": {
                "code": _ERROR_CODES.get(status, "generalException"),
                "message": message,
                "innerError": {"request-id": str(uuid.uuid4())},
            }
        }
        return json_response(body, status)

    def rate_limit_headers(self) -> dict[str, str]:
        return {}

    def rate_limited(self, target: str) -> Response:
        response = self.error(429, "Please retry again later.")
        window = self.rate_window
        wait = window.reset_at() - self.clock() if window is not None else 1.0
        response.headers["Retry-After"] = f"{max(wait, 0.001):.3f}"
        return response

    def empty_listing(
        self, payload: Any, headers: dict[str, str]
    ) -> tuple[Any, int, dict[str, str]]:
        if not isinstance(payload, dict) or "value" not in payload:
            return payload, 200, headers
        without_next = {
            key: value for key, value in payload.items() if key != "@odata.nextLink"
        }
        return {**without_next, "value": []}, 200, headers

    # Routes

    async def get_group(self, request: Request) -> Response:
        if denied := await self.admit(request, "groups"):
            return denied
        group_id = request.path_params["group_id"]
        if group_id not in self.directory.groups:
            return self._not_found(group_id)
        return await self.respond(self._group(group_id), target="groups")

    async def list_groups(self, request: Request) -> Response:
        if denied := await self.admit(request, "groups"):
            return denied
        groups = list(self.directory.groups.values())
        expression = request.query_params.get("$filter")
        if expression is not None:
            match = _FILTER_NAME.match(expression)
            if match is None:
                return self.error(400, f"Unsupported filter: {expression}")
            name = match.group(1).replace("''", "'").lower()
            groups = [group for group in groups if group.name.lower() == name]
        items = [self._group(group.id) for group in groups]
        return await self._page(request, items, "groups")

    async def members(self, request: Request) -> Response:
        if denied := await self.admit(request, "members"):
            return denied
        group_id = request.path_params["group_id"]
        if group_id not in self.directory.groups:
            return self._not_found(group_id)
        fields = self._select(request)
        transitive = request.url.path.endswith("/transitiveMembers")
        items: list[dict[str, Any]] = []
        for member_id in self._member_ids(group_id, transitive):
            user = self.directory.users.get(member_id)
            items.append(graph_user(user, fields) if user else self._group(member_id))
        return await self._page(request, items, "members")

    async def list_users(self, request: Request) -> Response:
        if denied := await self.admit(request, "users"):
            return denied
        fields = self._select(request)
        items = [graph_user(user, fields) for user in self.directory.users.values()]
        return await self._page(request, items, "users")

    def _member_ids(self, group_id: str, transitive: bool) -> list[str]:
        """Return direct member ids, or every user and group below the group."""
        if not transitive:
            return list(self.directory.groups[group_id].members)
        found: dict[str, None] = {}
        queue = deque([group_id])
        visited = {group_id}
        while queue:
            for member in self.directory.groups[queue.popleft()].members:
                if member in found:
                    continue
                found[member] = None
                if member in self.directory.groups and member not in visited:
                    visited.add(member)
                    queue.append(member)
        return list(found)

    def _select(self, request: Request) -> list[str] | None:
        select = request.query_params.get("$select")
        return [part.strip() for part in select.split(",")] if select else None

    async def _page(
        self, request: Request, items: list[dict[str, Any]], target: str
    ) -> Response:
        """Serve one page after ``$skiptoken`` (an opaque offset)."""
        top = page_limit(request.query_params.get("$top"), self.page_size, 100)
        start = decode_offset(request.query_params.get("$skiptoken"))
        payload: dict[str, Any] = {
            "@odata.context": f"{request.base_url}v1.0/$metadata#directoryObjects",
            "value": items[start : start + top],
        }
        if start + top < len(items):
            token = encode_offset(start + top)
            next_url = request.url.include_query_params(**{"$skiptoken": token})
            payload["@odata.nextLink"] = str(next_url)
        return await self.respond(payload, target=target, page=start // top + 1)

    def _group(self, group_id: str) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.group",
            "id": group_id,
            "displayName": self.directory.groups[group_id].name,
        }

    def _not_found(self, object_id: str) -> Response:
        return self.error(
            404,
            f"Resource '{object_id}' does not exist or one of its queried "
            "reference-property objects are not present.",
        )

    async def token(self, request: Request) -> Response:
        if denied := await self.admit(request, "token"):
            return denied
        form = await form_fields(request)
        if request.path_params["tenant"] != self.tenant_id:
            return self._oauth_error(
                400, "invalid_request", "AADSTS90002: Tenant not found."
            )
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return self._oauth_error(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
            )
        payload = {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": self.tokens.issue(self.token_lifetime),
        }
        fault = self.faults.pick("token")
        if fault is not None:
            return await self.apply_fault(fault, payload, "token", {})
        return json_response(payload)

    def _oauth_error(self, status: int, error: str, description: str) -> Response:
        body = {"error": error, "error_description": description}
        return json_response(body, status)
