"""The userName lookup path (``scim_reconciler.scim.lookup``): the same
responses as the general list path, and the same authentication."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from scim_reconciler.app import create_app
from scim_reconciler.db.engine import Database, open_database
from scim_reconciler.db.models import ManagedBy, Plan, ScimToken, User
from scim_reconciler.scim.lookup import LookupParameters, user_name_value
from scim_reconciler.services import mappings, tokens
from scim_reconciler.settings import Settings
from tests.conftest import Tenant, make_tenant, scim_client
from tests.support.cli import run_cli
from tests.support.resources import (
    ENTERPRISE_SCHEMA,
    USER_SCHEMA,
    assert_scim_error,
    create_group,
    create_user,
    json_of,
)

MAX_RESULTS = 1000


def parameters(
    filter_text: str | None = 'userName eq "ada@example.com"', **values: str
) -> LookupParameters:
    return LookupParameters(
        filter=filter_text,
        start_index=values.get("startIndex"),
        count=values.get("count"),
        attributes=values.get("attributes"),
        excluded=values.get("excludedAttributes"),
        sort_by=values.get("sortBy"),
        sort_order=values.get("sortOrder"),
    )


# Which requests take the lookup path


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ('userName eq "ada@example.com"', "ada@example.com"),
        ('USERNAME Eq "Ada@Example.com"', "Ada@Example.com"),
        ('  userName   eq\t"ada@example.com" ', "ada@example.com"),
        ('userName eq ""', ""),
        ('userName eq "ä ö @ 漢字"', "ä ö @ 漢字"),
    ],
)
def test_user_name_value_plain_filters(filter_text: str, expected: str) -> None:
    """RFC 7644 §3.4.2.2: attribute names and operators are case-insensitive,
    and whitespace between tokens is insignificant."""
    assert user_name_value(parameters(filter_text), MAX_RESULTS) == expected


@pytest.mark.parametrize(
    "filter_text",
    [
        None,
        "",
        'userName ne "ada@example.com"',
        'userName eq "ada\\"s@example.com"',
        'userName eq "ada\\u0040example.com"',
        'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ada@example.com"',
        'userName eq "ada@example.com" and active eq true',
        'userName eq "ada@example.com" or userName eq "bob@example.com"',
        'externalId eq "ada"',
        'userName eq "ada@example.com',
        "userName eq 42",
        'userName eq "' + "a" * 5000 + '"',
        # Long s (U+017F) folds to "s" only under Unicode case folding.
        'u\u017fername eq "ada@example.com"',
    ],
)
def test_user_name_value_other_filters(filter_text: str | None) -> None:
    assert user_name_value(parameters(filter_text), MAX_RESULTS) is None


@pytest.mark.parametrize(
    "values",
    [
        {"sortBy": "userName"},
        {"sortOrder": "descending"},
        {"startIndex": "2"},
        {"count": "0"},
        {"count": "-1"},
        {"count": "many"},
        {"startIndex": "first"},
    ],
)
def test_user_name_value_other_paging(values: dict[str, str]) -> None:
    """Paging and sorting other than the first page go to the general path,
    which also reports invalid values."""
    assert user_name_value(parameters(**values), MAX_RESULTS) is None


@pytest.mark.parametrize(
    "values",
    [
        {"startIndex": "1"},
        {"startIndex": "0"},
        {"count": "1"},
        {"count": "5000"},
        {"attributes": "userName"},
        {"excludedAttributes": "groups"},
    ],
)
def test_user_name_value_first_page(values: dict[str, str]) -> None:
    assert user_name_value(parameters(**values), MAX_RESULTS) == "ada@example.com"


# Same responses as the general path


async def add_hand_made_user(database: Database, tenant: Tenant, name: str) -> None:
    """Insert a dashboard user created by hand, which SCIM never shows."""
    now = datetime.now(UTC)
    async with database.write() as session:
        session.add(
            User(
                id=str(uuid.uuid4()),
                org_id=tenant.org.id,
                user_name=name,
                user_name_key=name.lower(),
                managed_by=ManagedBy.person,
                active=True,
                deleted=False,
                attributes={"schemas": [USER_SCHEMA], "userName": name},
                version=1,
                created_at=now,
                last_modified=now,
            )
        )


@pytest.fixture
async def directory(
    database: Database, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    """Users with groups, roles, the enterprise extension, and hidden ones."""
    ada = await create_user(
        client,
        "ada@example.com",
        externalId="00u-ada",
        name={"givenName": "Ada", "familyName": "Lovelace"},
        displayName="Ada Lovelace",
        emails=[{"value": "ada@example.com", "type": "work", "primary": True}],
        schemas=[USER_SCHEMA, ENTERPRISE_SCHEMA],
        **{ENTERPRISE_SCHEMA: {"employeeNumber": "701", "department": "R&D"}},
    )
    bob = await create_user(client, "bob@example.com", active=False)
    carol = await create_user(client, "carol@example.com")
    await create_user(client, "dan@example.com")

    await create_group(client, "Engineering", [ada["id"], bob["id"]])
    await create_group(client, "Analysts", [ada["id"]], externalId="grp-analysts")
    await create_group(client, "Unmapped", [ada["id"], carol["id"]])
    async with database.write() as session:
        await mappings.add_mapping(
            session, tenant.org, group="Engineering", role_slug="analytics_admin"
        )
        await mappings.add_mapping(
            session,
            tenant.org,
            group="Engineering",
            role_slug="course_management_admin",
            limited_to=["course-2"],
        )
        await mappings.add_mapping(
            session,
            tenant.org,
            group="grp-analysts",
            role_slug="course_management_admin",
            limited_to=["course-1"],
        )

    assert (await client.delete(f"/Users/{carol['id']}")).status_code == 204
    await add_hand_made_user(database, tenant, "erin@example.com")
    other = await make_tenant(database, "globex")
    await add_hand_made_user(database, other, "frank@example.com")


LOOKUPS = [
    "ada@example.com",
    "ADA@example.COM",
    "bob@example.com",
    "carol@example.com",
    "dan@example.com",
    "erin@example.com",
    "frank@example.com",
    "nobody@example.com",
]
OPTIONS: list[dict[str, str]] = [
    {},
    {"count": "1"},
    {"startIndex": "0", "count": "10"},
    {"attributes": "userName,roles"},
    {"attributes": "groups"},
    {"attributes": "displayName,groups.display"},
    {"attributes": f"{ENTERPRISE_SCHEMA}:employeeNumber"},
    {"excludedAttributes": "groups"},
    {"excludedAttributes": "roles,emails,name"},
    {"excludedAttributes": ENTERPRISE_SCHEMA},
]


@pytest.mark.usefixtures("directory")
@pytest.mark.parametrize("user_name", LOOKUPS)
async def test_lookup_same_as_general_path(
    client: httpx.AsyncClient, user_name: str
) -> None:
    """A lookup returns, byte for byte, the ListResponse of the general path:
    POST /Users/.search (RFC 7644 §3.4.3) with the same parameters."""
    filter_text = f'userName eq "{user_name}"'
    for options in OPTIONS:
        assert user_name_value(parameters(filter_text, **options), MAX_RESULTS)
        fast = await client.get("/Users", params={"filter": filter_text, **options})
        general = await client.post(
            "/Users/.search", json={"filter": filter_text, **options}
        )

        assert fast.status_code == 200, (options, fast.text)
        assert general.status_code == 200, (options, general.text)
        assert fast.headers["content-type"] == general.headers["content-type"]
        assert fast.content == general.content, options


@pytest.mark.usefixtures("directory")
async def test_lookup_document_contents(client: httpx.AsyncClient) -> None:
    """The lookup document carries groups in displayName order, merged roles
    and the ETag of the resource (RFC 7644 §3.14)."""
    response = await client.get(
        "/Users", params={"filter": 'userName eq "ada@example.com"'}
    )

    listed = json_of(response)
    assert listed["totalResults"] == 1
    [ada] = listed["Resources"]
    assert [group["display"] for group in ada["groups"]] == [
        "Analysts",
        "Engineering",
        "Unmapped",
    ]
    assert ada["roles"] == [
        {"value": "analytics_admin", "display": "Analytics Admin", "type": "full"},
        {
            "value": "course_management_admin",
            "display": "Course Management Admin",
            "type": "limited",
        },
    ]
    assert ada[ENTERPRISE_SCHEMA]["employeeNumber"] == "701"
    assert ada["meta"]["version"] == 'W/"1"'
    assert ada["meta"]["location"] == f"http://scim.test/scim/v2/Users/{ada['id']}"
    read = await client.get(f"/Users/{ada['id']}")
    assert read.json() == ada


@pytest.mark.usefixtures("directory")
async def test_lookup_inactive_user(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/Users", params={"filter": 'userName eq "bob@example.com"'}
    )

    [bob] = json_of(response)["Resources"]
    assert bob["active"] is False
    assert [role["value"] for role in bob["roles"]] == [
        "analytics_admin",
        "course_management_admin",
    ]


@pytest.mark.usefixtures("directory")
async def test_lookup_invalid_attributes_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/Users",
        params={"filter": 'userName eq "ada@example.com"', "attributes": "a b"},
    )

    assert_scim_error(response, 400, "invalidValue")


LOOKUP = {"filter": 'userName eq "ada@example.com"'}


# Which requests the middleware serves before routing


async def fail_general_path(*_: object, **__: object) -> None:
    raise AssertionError("the general path ran")


@pytest.mark.usefixtures("directory")
async def test_middleware_serves_lookup_alone(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scim_reconciler.scim.routes.scim_context", fail_general_path)

    response = await client.get("/Users", params=LOOKUP)

    assert response.status_code == 200, response.text
    assert json_of(response)["totalResults"] == 1


@pytest.mark.usefixtures("directory")
@pytest.mark.parametrize(
    "query",
    [
        # The route reads the last of repeated parameters.
        'filter=userName eq "bob@example.com"&filter=userName eq "ada@example.com"',
        'filter=userName eq "ada@example.com"&count=5&count=1',
        'filter=userName eq "ada@example.com" and active eq true',
    ],
)
async def test_middleware_passes_on_other_lookups(
    client: httpx.AsyncClient, query: str
) -> None:
    """Requests the middleware does not serve get the route's response."""
    routed = await client.get(f"/Users?{query}")

    assert routed.status_code == 200, routed.text
    assert [user["userName"] for user in json_of(routed)["Resources"]] == [
        "ada@example.com"
    ]


@pytest.mark.usefixtures("directory")
async def test_middleware_leaves_unicode_folding_to_route(
    client: httpx.AsyncClient,
) -> None:
    """Python's Unicode case folding reads U+017F (long s) as "s", but the
    filter grammar's attribute names are ASCII, so the route rejects it."""
    response = await client.get(
        "/Users", params={"filter": 'u\u017fername eq "ada@example.com"'}
    )

    assert_scim_error(response, 400, "invalidFilter")


async def test_middleware_lookup_counted_under_route(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request metrics name the route template of a served lookup."""
    observed: list[tuple[str, str | None, int]] = []
    monkeypatch.setattr(
        "scim_reconciler.observability.requests.metrics.observe_scim_request",
        lambda method, route, status, _seconds: observed.append(
            (method, route, status)
        ),
    )
    monkeypatch.setattr("scim_reconciler.scim.routes.scim_context", fail_general_path)

    response = await client.get("/Users", params=LOOKUP)

    assert response.status_code == 200, response.text
    assert observed == [("GET", "/scim/v2/Users", 200)]


# Authentication


async def lookup_with(
    database: Database, settings: Settings, secret: str | None, **options: str
) -> httpx.Response:
    async with scim_client(create_app(settings, database), secret) as http:
        return await http.get("/Users", params={**LOOKUP, **options})


async def test_lookup_revoked_elsewhere_is_401(
    database_url: str,
    client: httpx.AsyncClient,
    tenant: Tenant,
    tmp_path: Path,
) -> None:
    """A token revoked by another process fails the very next lookup."""
    await create_user(client, "ada@example.com")
    assert (await client.get("/Users", params=LOOKUP)).status_code == 200

    revoked = run_cli(
        database_url, tmp_path, "token", "revoke", "acme", tenant.token_id
    )
    response = await client.get("/Users", params=LOOKUP)

    assert revoked.returncode == 0, revoked.stderr
    body = assert_scim_error(response, 401)
    assert "revoked" in body["detail"]


async def test_lookup_unknown_token_is_401(
    database: Database, settings: Settings, tenant: Tenant
) -> None:
    unknown = await lookup_with(database, settings, "scimr_" + "x" * 43)
    missing = await lookup_with(database, settings, None)

    assert "not valid" in assert_scim_error(unknown, 401)["detail"]
    assert "missing" in assert_scim_error(missing, 401)["detail"]
    assert unknown.headers["www-authenticate"] == 'Bearer realm="scim"'


async def test_lookup_checks_token_before_parameters(
    database: Database, settings: Settings, tenant: Tenant
) -> None:
    """A bad token is a 401 even when the parameters are invalid too."""
    secret = "scimr_" + "x" * 43
    for options in ({"attributes": "a b"}, {"sortBy": "password"}, {"count": "x"}):
        response = await lookup_with(database, settings, secret, **options)
        assert_scim_error(response, 401)


async def test_lookup_expired_token_is_401(
    database: Database,
    settings: Settings,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with database.write() as session:
        token = await session.get(ScimToken, tenant.token_id)
        assert token is not None
        expires_at = token.expires_at
    monkeypatch.setattr(
        "scim_reconciler.scim.auth.utcnow", lambda: expires_at - timedelta(seconds=1)
    )
    before = await lookup_with(database, settings, tenant.token)
    monkeypatch.setattr("scim_reconciler.scim.auth.utcnow", lambda: expires_at)
    at_expiry = await lookup_with(database, settings, tenant.token)

    assert before.status_code == 200, before.text
    assert "expired" in assert_scim_error(at_expiry, 401)["detail"]


async def test_lookup_plan_without_scim_is_403(
    database: Database, settings: Settings
) -> None:
    starter = await make_tenant(database, "initech", Plan.starter)

    response = await lookup_with(database, settings, starter.token)

    assert "starter" in assert_scim_error(response, 403)["detail"]


async def test_lookup_records_last_use(
    database: Database, settings: Settings, tenant: Tenant
) -> None:
    response = await lookup_with(database, settings, tenant.token)

    assert response.status_code == 200, response.text
    async with database.read() as session:
        token = await session.get(ScimToken, tenant.token_id)
    assert token is not None
    assert token.last_used_at is not None


async def test_lookup_skips_last_use_while_writes_queue(
    database: Database, settings: Settings, tenant: Tenant
) -> None:
    """A lookup does not wait for queued SQLite writes to record its token's
    use; a later lookup records it."""
    if database.sqlite_writers is None:
        pytest.skip("only SQLite queues write transactions")

    async with database.sqlite_writers.turn(), asyncio.timeout(5):
        during = await lookup_with(database, settings, tenant.token)
    async with database.read() as session:
        token = await session.get(ScimToken, tenant.token_id)
        skipped = token.last_used_at if token else "missing"
    after = await lookup_with(database, settings, tenant.token)
    async with database.read() as session:
        token = await session.get(ScimToken, tenant.token_id)

    assert during.status_code == 200, during.text
    assert skipped is None
    assert after.status_code == 200, after.text
    assert token is not None
    assert token.last_used_at is not None


async def test_lookup_new_token_of_other_org(
    database: Database, settings: Settings, client: httpx.AsyncClient
) -> None:
    """Tokens authenticate one organization: another's lookup finds nothing."""
    await create_user(client, "ada@example.com")
    other = await make_tenant(database, "globex")
    async with database.write() as session:
        fresh = await tokens.create_token(
            session, other.org, name="Okta", expires_in_days=1
        )

    response = await lookup_with(database, settings, fresh.secret)

    assert json_of(response)["totalResults"] == 0


# Connections that the database dropped


async def drop_connections(database: Database) -> None:
    """End every other session on the test database, as a restart would."""
    async with database.write() as session:
        await session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )


@pytest.mark.parametrize(
    ("pre_ping", "idle_seconds", "first_status"),
    [(True, 0.0, 200), (True, 60.0, 500), (False, 0.0, 500)],
)
async def test_lookup_after_dropped_connection(
    database_url: str,
    database: Database,
    settings: Settings,
    client: httpx.AsyncClient,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    pre_ping: bool,
    idle_seconds: float,
    first_status: int,
) -> None:
    """Pre-ping replaces a dropped connection that sat idle longer than
    PRE_PING_IDLE_SECONDS. Otherwise one lookup fails, and the broken
    connection is not used again."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server connection to drop")
    monkeypatch.setattr("scim_reconciler.db.engine.PRE_PING_IDLE_SECONDS", idle_seconds)
    await create_user(client, "ada@example.com")
    service = open_database(database_url, pool_size=1, pool_pre_ping=pre_ping)
    # The client gets the 500 response of a failure, not the exception.
    transport = httpx.ASGITransport(
        app=create_app(settings, service), raise_app_exceptions=False
    )
    headers = {"Authorization": f"Bearer {tenant.token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://scim.test/scim/v2", headers=headers
    ) as http:
        try:
            assert (await http.get("/Users", params=LOOKUP)).status_code == 200
            await drop_connections(database)

            first = await http.get("/Users", params=LOOKUP)
            second = await http.get("/Users", params=LOOKUP)
        finally:
            await service.dispose()

    assert first.status_code == first_status, first.text
    assert second.status_code == 200, second.text
    assert json_of(second)["totalResults"] == 1


async def test_returned_connection_rolled_back(
    database_url: str, database: Database
) -> None:
    """A SQLite connection returned inside a transaction is rolled back, though
    the pool skips its own rollback on return."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the reset on return is SQLite's")
    service = open_database(database_url, pool_size=1)
    try:
        async with service.read_engine.connect() as connection:
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute("BEGIN")
            assert raw.driver_connection.in_transaction
        async with service.read_engine.connect() as connection:
            raw = await connection.get_raw_connection()
            in_transaction = raw.driver_connection.in_transaction
    finally:
        await service.dispose()

    assert in_transaction is False
