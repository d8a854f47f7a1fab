"""The console's router: every page, its static files, and a 404 page for the rest."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from scim_reconciler.console import (
    auth,
    mappings,
    orgs,
    provisioning,
    reconciliation,
    users,
)
from scim_reconciler.console.auth import current_session
from scim_reconciler.console.rendering import (
    STATIC_DIR,
    ConsoleRoute,
    error_page,
    not_found,
    see_other,
)

# The files the console serves, by name; nothing else under static/ is reachable.
STATIC_FILES = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

router = APIRouter(route_class=ConsoleRoute)
for module in (auth, orgs, provisioning, mappings, reconciliation, users):
    router.include_router(module.router)


@router.get("/console/static/{name}")
async def static_file(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(
        STATIC_DIR / name,
        media_type=media_type,
        headers={
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.api_route("/console/{path:path}", methods=["GET", "POST"])
async def unknown_page(request: Request, path: str) -> Response:
    if not path:
        return see_other("/console")
    # Shows who is signed in, so the menu still works from the 404 page.
    await current_session(request)
    return error_page(request, not_found("This page"))
