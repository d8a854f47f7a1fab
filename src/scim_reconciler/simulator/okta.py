"""A simulated Okta org: groups, group members, users and the OAuth token
endpoint of a service app, with ``Link`` paging and ``X-Rate-Limit-*`` headers.
Each endpoint family (the path with its ids left out) has its own rate-limit
window.

Okta groups cannot contain groups, so members of nested groups in the
directory file are listed as direct members. Both credentials work: the
printed SSWS API token, and the service app (``auth="oauth"``) whose private
key the printed configuration carries.
"""

from __future__ import annotations

import email.utils
import math
import re
import secrets
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scim_reconciler.reconcile.model import IdpUser
from scim_reconciler.simulator.base import (
    IdpSimulator,
    bearer_token,
    form_fields,
    json_response,
    page_limit,
)

OKTA_STATUSES = {
    "ACTIVE",
    "DEPROVISIONED",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "PROVISIONED",
    "RECOVERY",
    "STAGED",
    "SUSPENDED",
}
_SEARCH_NAME = re.compile(r'^profile\.name eq "((?:[^"\\]|\\.)*)"$')
_ID_SEGMENT = re.compile(r"/(groups|users)/[^/]+")
_REQUIRED_SCOPES = {"okta.groups.read", "okta.users.read"}
_ERROR_CODES = {
    400: "E0000001",
    401: "E0000011",
    403: "E0000006",
    404: "E0000007",
    429: "E0000047",
}


def okta_user(user: IdpUser) -> dict[str, Any]:
    status = (user.status or "").upper()
    if status not in OKTA_STATUSES:
        status = "ACTIVE" if user.active else "SUSPENDED"
    profile = {
        "login": user.user_name,
        "email": user.email,
        "firstName": user.given_name,
        "lastName": user.family_name,
    }
    if user.display_name:
        profile["displayName"] = user.display_name
    return {"id": user.id, "status": status, "profile": profile}


class OktaSimulator(IdpSimulator):
    name = "okta"
    max_page_size = 1000
    default_rate_limit = 600
    default_window_seconds = 60.0
    default_token_lifetime = 3600

    def __init__(self, *args: Any, auth: str = "ssws", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth
        self.api_token = "sim" + secrets.token_urlsafe(30)
        # The service app's key pair; generating one takes a moment, so only
        # a simulator that prints a service-app configuration makes one.
        self.key: RSAKey | None = None
        if auth == "oauth":
            self.key = RSAKey.generate_key(2048, parameters={"kid": "sim-key"})
        self.base_url = ""

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/groups", self.list_groups),
            Route("/api/v1/groups/{group_id}", self.get_group),
            Route("/api/v1/groups/{group_id}/users", self.group_users),
            Route("/api/v1/users", self.list_users),
            Route("/oauth2/v1/token", self.token, methods=["POST"]),
        ]

    def connector_config(self, base_url: str) -> dict[str, Any]:
        self.base_url = base_url
        if self.key is not None:
            pem = self.key.as_pem(private=True)
            return {
                "kind": "okta",
                "base_url": base_url,
                "client_id": self.client_id,
                "private_key": pem.decode() if isinstance(pem, bytes) else pem,
                "key_id": "sim-key",
            }
        return {"kind": "okta", "base_url": base_url, "api_token": self.api_token}

    def is_authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header == f"SSWS {self.api_token}":
            return True
        token = bearer_token(request)
        return token is not None and self.tokens.is_valid(token)

    def error(self, status: int, message: str) -> Response:
        code = _ERROR_CODES.get(status, "E0000009")
        body = {
            "errorCode": code,
            "errorSummary": message,
            "errorLink": code,
            "errorId": "sim" + secrets.token_hex(8),
            "errorCauses": [],
        }
        return json_response(body, status, self.rate_limit_headers())

    def rate_limit_headers(self) -> dict[str, str]:
        window = self.rate_window
        now = self.clock()
        # Clients compare the epoch reset with Date, so both use this clock.
        date = email.utils.formatdate(now, usegmt=True)
        if window is None:
            return {
                "Date": date,
                "X-Rate-Limit-Limit": "10000",
                "X-Rate-Limit-Remaining": "10000",
                "X-Rate-Limit-Reset": str(math.ceil(now + 60)),
            }
        reset = window.reset_at() if window.used else now + window.seconds
        return {
            "Date": date,
            "X-Rate-Limit-Limit": str(window.limit),
            "X-Rate-Limit-Remaining": str(window.remaining()),
            "X-Rate-Limit-Reset": str(math.ceil(reset)),
        }

    def rate_limit_bucket(self, request: Request) -> str:
        # Okta limits each endpoint family on its own, as the connector assumes:
        # /api/v1/groups/{id} and /api/v1/groups/{id}/users are two windows.
        return _ID_SEGMENT.sub(r"/\1/{id}", request.url.path)

    def empty_listing(
        self, payload: Any, headers: dict[str, str]
    ) -> tuple[Any, int, dict[str, str]]:
        if not isinstance(payload, list):
            return payload, 200, headers
        links = headers.get("Link", "").split(", ")
        without_next = [link for link in links if 'rel="next"' not in link]
        return [], 200, {**headers, "Link": ", ".join(without_next)}

    # Routes

    async def get_group(self, request: Request) -> Response:
        if denied := await self.admit(request, "groups"):
            return denied
        group = self.directory.groups.get(request.path_params["group_id"])
        if group is None:
            group_id = request.path_params["group_id"]
            return self.error(
                404, f"Not found: Resource not found: {group_id} (UserGroup)"
            )
        return await self.respond(self._group(group.id), target="groups")

    async def list_groups(self, request: Request) -> Response:
        if denied := await self.admit(request, "groups"):
            return denied
        groups = list(self.directory.groups.values())
        search = request.query_params.get("search")
        prefix = request.query_params.get("q")
        if search is not None:
            match = _SEARCH_NAME.match(search)
            if match is None:
                return self.error(400, "Api validation failed: search")
            name = re.sub(r"\\(.)", r"\1", match.group(1)).lower()
            groups = [group for group in groups if group.name.lower() == name]
        elif prefix is not None:
            groups = [g for g in groups if g.name.lower().startswith(prefix.lower())]
        items = [self._group(group.id) for group in groups]
        return await self._page(request, "/api/v1/groups", items, "groups")

    async def group_users(self, request: Request) -> Response:
        if denied := await self.admit(request, "members"):
            return denied
        group_id = request.path_params["group_id"]
        if group_id not in self.directory.groups:
            return self.error(
                404, f"Not found: Resource not found: {group_id} (UserGroup)"
            )
        users = self.directory.users
        items = [okta_user(users[uid]) for uid in self.directory.user_members(group_id)]
        return await self._page(
            request, f"/api/v1/groups/{group_id}/users", items, "members"
        )

    async def list_users(self, request: Request) -> Response:
        if denied := await self.admit(request, "users"):
            return denied
        items = [okta_user(user) for user in self.directory.users.values()]
        return await self._page(request, "/api/v1/users", items, "users")

    async def _page(
        self, request: Request, path: str, items: list[dict[str, Any]], target: str
    ) -> Response:
        """Serve one page of ``items`` after the ``after`` cursor (an item id)."""
        limit = page_limit(request.query_params.get("limit"), self.page_size, 200)
        after = request.query_params.get("after")
        start = 0
        if after:
            ids = [item["id"] for item in items]
            start = ids.index(after) + 1 if after in ids else len(items)
        chunk = items[start : start + limit]
        base = str(request.base_url).rstrip("/")
        links = [f'<{base}{path}?limit={limit}>; rel="self"']
        if start + limit < len(items):
            cursor = chunk[-1]["id"]
            links.append(f'<{base}{path}?after={cursor}&limit={limit}>; rel="next"')
        return await self.respond(
            chunk,
            target=target,
            page=start // limit + 1,
            headers={"Link": ", ".join(links)},
        )

    def _group(self, group_id: str) -> dict[str, Any]:
        group = self.directory.groups[group_id]
        return {
            "id": group.id,
            "type": "OKTA_GROUP",
            "profile": {"name": group.name, "description": None},
        }

    async def token(self, request: Request) -> Response:
        if denied := await self.admit(request, "token"):
            return denied
        form = await form_fields(request)
        assertion = str(form.get("client_assertion") or "")
        scopes = set(str(form.get("scope") or "").split())
        token_url = str(request.url.replace(query=""))

        if self.key is None:
            return self._oauth_error(
                401, "invalid_client", "This simulator serves API tokens only."
            )
        try:
            claims = jwt.decode(assertion, self.key).claims
        except (JoseError, ValueError):
            return self._oauth_error(
                401, "invalid_client", "The client assertion is invalid."
            )
        if (
            claims.get("iss") != self.client_id
            or claims.get("sub") != self.client_id
            or claims.get("aud") != token_url
            or float(claims.get("exp", 0)) < self.clock()
        ):
            return self._oauth_error(
                401, "invalid_client", "The client_assertion token is invalid."
            )
        if not scopes.issuperset(_REQUIRED_SCOPES):
            return self._oauth_error(
                400, "invalid_scope", "The requested scope is invalid or unknown."
            )

        fault = self.faults.pick("token")
        token = self.tokens.issue(self.token_lifetime)
        payload = {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "access_token": token,
            "scope": " ".join(sorted(scopes)),
        }
        if fault is not None:
            return await self.apply_fault(fault, payload, "token", {})
        return json_response(payload)

    def _oauth_error(self, status: int, error: str, description: str) -> Response:
        return json_response({"error": error, "error_description": description}, status)
