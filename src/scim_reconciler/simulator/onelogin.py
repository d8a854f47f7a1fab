"""A simulated OneLogin account (API v2): roles, role users, users and the
token endpoint, with ``After-Cursor`` paging and ``X-RateLimit-*`` headers
(the reset in seconds from now).

The directory file's groups are served as roles, and members of nested
groups as direct role users, since roles cannot contain roles. A 429 from the
token endpoint is an HTML page, as OneLogin sends it.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
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

_ERROR_NAMES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    403: "ForbiddenError",
    404: "NotFoundError",
    429: "TooManyRequestsError",
}
_TOKEN_429_PAGE = "<html><body><h1>429 Too Many Requests</h1></body></html>"


def _wire_id(value: str) -> int | str:
    """OneLogin ids are numbers; ids of the file that are numbers become ones."""
    return int(value) if value.isdigit() else value


def onelogin_user(user: IdpUser) -> dict[str, Any]:
    status = 1 if user.active else 2
    if user.status and user.status.isdigit():
        status = int(user.status)
    return {
        "id": _wire_id(user.id),
        "username": user.user_name,
        "email": user.email,
        "firstname": user.given_name,
        "lastname": user.family_name,
        "status": status,
        "state": 1,
    }


class OneLoginSimulator(IdpSimulator):
    name = "onelogin"
    max_page_size = 100
    default_rate_limit = 5000
    default_window_seconds = 3600.0
    default_token_lifetime = 36000

    def routes(self) -> list[Route]:
        return [
            Route("/api/2/roles", self.list_roles),
            Route("/api/2/roles/{role_id}", self.get_role),
            Route("/api/2/roles/{role_id}/users", self.role_users),
            Route("/api/2/users", self.list_users),
            Route("/auth/oauth2/v2/token", self.token, methods=["POST"]),
        ]

    def connector_config(self, base_url: str) -> dict[str, Any]:
        return {
            "kind": "onelogin",
            "base_url": base_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def is_authorized(self, request: Request) -> bool:
        token = bearer_token(request)
        return token is not None and self.tokens.is_valid(token)

    def error(self, status: int, message: str) -> Response:
        if status == 401:
            message = "Unauthorized"
        body = {
            "statusCode": status,
            "name": _ERROR_NAMES.get(status, "Error"),
            "message": message,
        }
        return json_response(body, status, self.rate_limit_headers())

    def rate_limit_headers(self) -> dict[str, str]:
        window = self.rate_window
        if window is None:
            return {}
        now = self.clock()
        reset = window.reset_at() - now if window.used else window.seconds
        return {
            "X-RateLimit-Limit": str(window.limit),
            "X-RateLimit-Remaining": str(window.remaining()),
            "X-RateLimit-Reset": str(max(math.ceil(reset), 0)),
        }

    def rate_limited(self, target: str) -> Response:
        if target == "token":
            return HTMLResponse(_TOKEN_429_PAGE, status_code=429)
        return self.error(429, "Too Many Requests")

    def empty_listing(
        self, payload: Any, headers: dict[str, str]
    ) -> tuple[Any, int, dict[str, str]]:
        if not isinstance(payload, list):
            return payload, 200, headers
        without_cursor = {
            key: value for key, value in headers.items() if key != "After-Cursor"
        }
        return [], 200, without_cursor

    # Routes

    async def get_role(self, request: Request) -> Response:
        if denied := await self.admit(request, "groups"):
            return denied
        role_id = request.path_params["role_id"]
        if role_id not in self.directory.groups:
            return self.error(404, "The resource with the given id could not be found")
        return await self.respond(self._role(role_id), target="groups")

    async def list_roles(self, request: Request) -> Response:
        if denied := await self.admit(request, "groups"):
            return denied
        name = request.query_params.get("name")
        roles = [
            self._role(group.id)
            for group in self.directory.groups.values()
            if name is None or group.name.lower() == name.lower()
        ]
        return await self._page(request, roles, "groups")

    async def role_users(self, request: Request) -> Response:
        if denied := await self.admit(request, "members"):
            return denied
        role_id = request.path_params["role_id"]
        if role_id not in self.directory.groups:
            return self.error(404, "The resource with the given id could not be found")
        users = self.directory.users
        items = [
            {
                "id": _wire_id(user_id),
                "name": users[user_id].display_name or users[user_id].user_name,
                "username": users[user_id].user_name,
                "assigned": True,
            }
            for user_id in self.directory.user_members(role_id)
        ]
        return await self._page(request, items, "members")

    async def list_users(self, request: Request) -> Response:
        if denied := await self.admit(request, "users"):
            return denied
        users = list(self.directory.users.values())
        requested_ids = request.query_params.get("user_ids")
        if requested_ids is not None:
            # Looked up by id: a scan of every user per page of role users
            # would make the simulator, not the connector, the bottleneck.
            known = self.directory.users
            users = [
                known[i] for i in dict.fromkeys(requested_ids.split(",")) if i in known
            ]
        items = [onelogin_user(user) for user in users]
        fields = request.query_params.get("fields")
        if fields:
            keep = set(fields.split(","))
            items = [{k: v for k, v in item.items() if k in keep} for item in items]
        return await self._page(request, items, "users")

    async def _page(
        self, request: Request, items: list[dict[str, Any]], target: str
    ) -> Response:
        """Serve one page after ``cursor`` (an opaque offset)."""
        limit = page_limit(request.query_params.get("limit"), self.page_size, 50)
        start = decode_offset(request.query_params.get("cursor"))
        headers = {"Total-Count": str(len(items))}
        if start + limit < len(items):
            cursor = encode_offset(start + limit)
            headers["After-Cursor"] = cursor
        return await self.respond(
            items[start : start + limit],
            target=target,
            page=start // limit + 1,
            headers=headers,
        )

    def _role(self, role_id: str) -> dict[str, Any]:
        return {"id": _wire_id(role_id), "name": self.directory.groups[role_id].name}

    async def token(self, request: Request) -> Response:
        if denied := await self.admit(request, "token"):
            return denied
        client_id, client_secret = await _client_credentials(request)
        if client_id != self.client_id or client_secret != self.client_secret:
            return json_response(
                {
                    "statusCode": 401,
                    "name": "Unauthorized",
                    "message": "Invalid client",
                },
                401,
            )
        payload = {
            "access_token": self.tokens.issue(self.token_lifetime),
            "created_at": "2024-01-01T00:00:00.000Z",
            "expires_in": self.token_lifetime,
            "refresh_token": None,
            "token_type": "bearer",
            "account_id": 1,
        }
        fault = self.faults.pick("token")
        if fault is not None:
            return await self.apply_fault(fault, payload, "token", {})
        return json_response(payload)


async def _client_credentials(request: Request) -> tuple[str | None, str | None]:
    """Read the client id and secret from the form body, Basic auth, or the
    ``client_id:..., client_secret:...`` header that OneLogin also accepts."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        decoded = base64.b64decode(header[6:]).decode()
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    if header.startswith("client_id:"):
        parts = dict(
            part.strip().split(":", 1) for part in header.split(",") if ":" in part
        )
        return parts.get("client_id"), parts.get("client_secret")
    form = await form_fields(request)
    return form.get("client_id"), form.get("client_secret")
