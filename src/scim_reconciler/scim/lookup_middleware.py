"""The userName lookup served before FastAPI's routing.

IdPs send ``GET /scim/v2/Users?filter=userName eq "..."`` before nearly every
change, so it is the most frequent SCIM request. FastAPI's routing, parameter
parsing and exception middleware cost more CPU time than the lookup itself
(``scim_reconciler.scim.lookup``), so this ASGI middleware recognizes the
request and serves it first.

It serves only a lookup that succeeds. Any other request, and a lookup that
fails (a bad token, a plan without SCIM, invalid attributes), goes on to the
application, whose ``GET /Users`` route returns the same response or the
same error. Both build the document with ``documents.user_document``, which
tests/scim/test_lookup.py checks byte for byte.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from scim2_models import SCIMException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from scim_reconciler.scim import lookup
from scim_reconciler.scim.routes import list_response

USERS_PATH = "/scim/v2/Users"

# The query parameters of GET /Users, by their names in RFC 7644 §3.4.2.
_PARAMETERS = (
    "filter",
    "startIndex",
    "count",
    "attributes",
    "excludedAttributes",
    "sortBy",
    "sortOrder",
)


class UserNameLookupMiddleware:
    """Serve successful userName lookups, and pass on every other request.

    ``route`` is the application's ``GET /scim/v2/Users`` route, which the
    request metrics read from the scope as they do for a routed request.
    """

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == USERS_PATH
            and not scope.get("root_path")
        ):
            response = await self._lookup(Request(scope))
            if response is not None:
                scope["route"] = self.route
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _lookup(self, request: Request) -> Response | None:
        parameters = _lookup_parameters(request.scope["query_string"])
        if parameters is None:
            return None
        settings = request.app.state.settings
        user_name = lookup.user_name_value(parameters, settings.max_results)
        if user_name is None:
            return None
        try:
            found = await lookup.find_user(
                request,
                request.app.state.database,
                settings.scim_base_url,
                user_name,
                parameters,
            )
        except SCIMException:
            return None
        return list_response(len(found), 1, found)


def _lookup_parameters(query_string: bytes) -> lookup.LookupParameters | None:
    """Read the query as Starlette does, or return None when a parameter of
    the lookup repeats, which the route resolves by its own rule."""
    values: dict[str, str] = {}
    query = query_string.decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in values and name in _PARAMETERS:
            return None
        values[name] = value
    return lookup.LookupParameters(*(values.get(name) for name in _PARAMETERS))
