"""HTTP routes of the SCIM service under ``/scim/v2``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from scim2_models import (
    InvalidSyntaxException,
    NotFoundException,
    SCIMException,
)
from starlette.responses import Response

from scim_reconciler.db.engine import Database
from scim_reconciler.scim import groups, users
from scim_reconciler.scim.auth import authenticate
from scim_reconciler.scim.context import ScimContext
from scim_reconciler.scim.documents import group_projection, user_projection
from scim_reconciler.scim.errors import error_response
from scim_reconciler.scim.paging import Page, parse_page, parse_sort_order
from scim_reconciler.scim.schemas import (
    LIST_RESPONSE_SCHEMA,
    SCIM_MEDIA_TYPE,
    resource_types,
    schemas,
    service_provider_config,
)
from scim_reconciler.settings import Settings

SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


class PayloadTooLargeError(SCIMException):
    status = 413
    scim_type = ""
    _default_detail = "the request body is too large"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def scim_context(request: Request) -> ScimContext:
    settings = _settings(request)
    return await authenticate(request, _database(request), settings.scim_base_url)


Context = Annotated[ScimContext, Depends(scim_context)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]


def scim_response(
    document: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(document, separators=(",", ":")),
        status_code=status,
        media_type=SCIM_MEDIA_TYPE,
        headers=headers,
    )


def _resource_response(document: dict[str, Any], status: int = 200) -> Response:
    meta = document.get("meta") or {}
    headers = {}
    if meta.get("version"):
        headers["ETag"] = meta["version"]
    if status == 201 and meta.get("location"):
        headers["Location"] = meta["location"]
    return scim_response(document, status, headers)


async def read_body(request: Request) -> Any:
    """Read a JSON body within the size limit, whatever its declared JSON type."""
    limit = _settings(request).max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(
            detail=f"the request body is {declared} bytes; the limit is {limit} bytes"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                detail=f"the request body exceeds the limit of {limit} bytes"
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InvalidSyntaxException(
            detail="the request body is empty; send a JSON object"
        )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSyntaxException(
            detail=f"the request body is not valid JSON: {exc}"
        ) from None


def list_response(
    total: int, start_index: int, resources: list[dict[str, Any]]
) -> Response:
    return scim_response(
        {
            "schemas": [LIST_RESPONSE_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


router = APIRouter(prefix="/scim/v2")


@router.get("/ServiceProviderConfig")
async def get_service_provider_config(request: Request, ctx: Context) -> Response:
    settings = _settings(request)
    return scim_response(service_provider_config(ctx.base_url, settings.max_results))


@router.get("/ResourceTypes")
async def list_resource_types(ctx: Context) -> Response:
    found = resource_types(ctx.base_url)
    return list_response(len(found), 1, found)


@router.get("/ResourceTypes/{name}")
async def get_resource_type(name: str, ctx: Context) -> Response:
    for document in resource_types(ctx.base_url):
        if document["id"] == name:
            return scim_response(document)
    raise NotFoundException(
        detail=f"ResourceType {name!r} not found; use User or Group"
    )


@router.get("/Schemas")
async def list_schemas(ctx: Context) -> Response:
    found = schemas(ctx.base_url)
    return list_response(len(found), 1, found)


@router.get("/Schemas/{urn}")
async def get_schema(urn: str, ctx: Context) -> Response:
    for document in schemas(ctx.base_url):
        if document["id"] == urn:
            return scim_response(document)
    raise NotFoundException(detail=f"Schema {urn!r} not found")


@router.api_route("/Bulk", methods=["POST"])
@router.api_route("/Me", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def not_implemented(request: Request, ctx: Context) -> Response:
    return error_response(
        501, f"{request.url.path.rsplit('/', 1)[-1]} is not supported by this service"
    )


# Users


@router.post("/Users")
async def post_user(request: Request, ctx: Context) -> Response:
    document = await users.create_user(
        _database(request), ctx, await read_body(request)
    )
    return _resource_response(document, 201)


@router.get("/Users")
async def get_users(
    request: Request,
    filter: str | None = None,
    startIndex: str | None = None,
    count: str | None = None,
    attributes: str | None = None,
    excludedAttributes: str | None = None,
    sortBy: str | None = None,
    sortOrder: str | None = None,
) -> Response:
    # lookup_middleware serves a userName lookup that succeeds before routing.
    # For any other lookup this route returns the same document, or its error.
    ctx = await scim_context(request)
    return await _search_users(
        request,
        ctx,
        filter,
        startIndex,
        count,
        attributes,
        excludedAttributes,
        sortBy,
        sortOrder,
    )


async def _search_users(
    request: Request,
    ctx: ScimContext,
    filter_text: str | None,
    start_index: str | None,
    count: str | None,
    attributes: str | None,
    excluded: str | None,
    sort_by: str | None,
    sort_order: str | None,
) -> Response:
    page = parse_page(start_index, count, _settings(request).max_results)
    projection = user_projection(attributes, excluded)
    total, found = await users.list_users(
        _database(request),
        ctx,
        filter_text,
        page,
        projection,
        sort_by,
        parse_sort_order(sort_order),
    )
    return list_response(total, page.start_index, found)


def _search_parameters(body: Any) -> dict[str, str | None]:
    if not isinstance(body, dict):
        raise InvalidSyntaxException(detail="a SearchRequest must be a JSON object")

    def text(name: str) -> str | None:
        value = body.get(name)
        if value is None:
            return None
        if isinstance(value, list):
            return ",".join(str(item) for item in value)
        return str(value)

    return {
        "filter_text": text("filter"),
        "start_index": text("startIndex"),
        "count": text("count"),
        "attributes": text("attributes"),
        "excluded": text("excludedAttributes"),
        "sort_by": text("sortBy"),
        "sort_order": text("sortOrder"),
    }


@router.post("/Users/.search")
async def search_users(request: Request, ctx: Context) -> Response:
    parameters = _search_parameters(await read_body(request))
    return await _search_users(request, ctx, **parameters)


@router.post("/.search")
async def search_all(request: Request, ctx: Context) -> Response:
    """Search Users and Groups at once (RFC 7644 §3.4.3), Users listed first.

    A filter on an attribute that one resource type cannot be filtered on
    matches none of that type, as RFC 7644 §3.4.2.1 requires for attributes a
    type does not define.
    """
    parameters = _search_parameters(await read_body(request))
    settings = _settings(request)
    page = parse_page(
        parameters["start_index"], parameters["count"], settings.max_results
    )
    descending = parse_sort_order(parameters["sort_order"])
    database = _database(request)
    everything = Page(1, page.start_index - 1 + page.count)
    found: list[dict[str, Any]] = []
    total = 0
    failures: list[SCIMException] = []
    for search, projection in (
        (users.list_users, user_projection),
        (groups.list_groups, group_projection),
    ):
        try:
            count, resources = await search(
                database,
                ctx,
                parameters["filter_text"],
                everything,
                projection(parameters["attributes"], parameters["excluded"]),
                None,
                descending,
            )
        except SCIMException as exc:
            failures.append(exc)
            continue
        total += count
        found.extend(resources)
    if len(failures) == 2:
        raise failures[0]
    start = page.start_index - 1
    return list_response(total, page.start_index, found[start : start + page.count])


@router.get("/Users/{user_id}")
async def get_user(
    request: Request,
    user_id: str,
    ctx: Context,
    attributes: str | None = None,
    excludedAttributes: str | None = None,
) -> Response:
    projection = user_projection(attributes, excludedAttributes)
    return _resource_response(
        await users.get_user(_database(request), ctx, user_id, projection)
    )


@router.put("/Users/{user_id}")
async def put_user(
    request: Request, user_id: str, ctx: Context, if_match: IfMatch = None
) -> Response:
    body = await read_body(request)
    return _resource_response(
        await users.replace_user(_database(request), ctx, user_id, body, if_match)
    )


@router.patch("/Users/{user_id}")
async def patch_user(
    request: Request, user_id: str, ctx: Context, if_match: IfMatch = None
) -> Response:
    body = await read_body(request)
    return _resource_response(
        await users.patch_user(_database(request), ctx, user_id, body, if_match)
    )


@router.delete("/Users/{user_id}")
async def delete_user(
    request: Request, user_id: str, ctx: Context, if_match: IfMatch = None
) -> Response:
    await users.delete_user(_database(request), ctx, user_id, if_match)
    return Response(status_code=204)


# Groups


@router.post("/Groups")
async def post_group(request: Request, ctx: Context) -> Response:
    document = await groups.create_group(
        _database(request), ctx, await read_body(request)
    )
    return _resource_response(document, 201)


async def _search_groups(
    request: Request,
    ctx: ScimContext,
    filter_text: str | None,
    start_index: str | None,
    count: str | None,
    attributes: str | None,
    excluded: str | None,
    sort_by: str | None,
    sort_order: str | None,
) -> Response:
    page = parse_page(start_index, count, _settings(request).max_results)
    projection = group_projection(attributes, excluded)
    total, found = await groups.list_groups(
        _database(request),
        ctx,
        filter_text,
        page,
        projection,
        sort_by,
        parse_sort_order(sort_order),
    )
    return list_response(total, page.start_index, found)


@router.get("/Groups")
async def get_groups(
    request: Request,
    ctx: Context,
    filter: str | None = None,
    startIndex: str | None = None,
    count: str | None = None,
    attributes: str | None = None,
    excludedAttributes: str | None = None,
    sortBy: str | None = None,
    sortOrder: str | None = None,
) -> Response:
    return await _search_groups(
        request,
        ctx,
        filter,
        startIndex,
        count,
        attributes,
        excludedAttributes,
        sortBy,
        sortOrder,
    )


@router.post("/Groups/.search")
async def search_groups(request: Request, ctx: Context) -> Response:
    parameters = _search_parameters(await read_body(request))
    return await _search_groups(request, ctx, **parameters)


@router.get("/Groups/{group_id}")
async def get_group(
    request: Request,
    group_id: str,
    ctx: Context,
    attributes: str | None = None,
    excludedAttributes: str | None = None,
) -> Response:
    projection = group_projection(attributes, excludedAttributes)
    return _resource_response(
        await groups.get_group(_database(request), ctx, group_id, projection)
    )


@router.put("/Groups/{group_id}")
async def put_group(
    request: Request, group_id: str, ctx: Context, if_match: IfMatch = None
) -> Response:
    body = await read_body(request)
    return _resource_response(
        await groups.replace_group(_database(request), ctx, group_id, body, if_match)
    )


@router.patch("/Groups/{group_id}")
async def patch_group(
    request: Request, group_id: str, ctx: Context, if_match: IfMatch = None
) -> Response:
    body = await read_body(request)
    document = await groups.patch_group(
        _database(request), ctx, group_id, body, if_match
    )
    assert document is not None
    return _resource_response(document)


@router.delete("/Groups/{group_id}")
async def delete_group(
    request: Request, group_id: str, ctx: Context, if_match: IfMatch = None
) -> Response:
    await groups.delete_group(_database(request), ctx, group_id, if_match)
    return Response(status_code=204)
