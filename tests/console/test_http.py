"""The console over plain HTTP: sign-in, sessions, CSRF, access and forms."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from scim_reconciler.admin import credentials
from scim_reconciler.db.engine import Database
from scim_reconciler.db.models import AuditEvent, RoleMapping, ScimToken, Source
from tests.console.conftest import Console, make_console
from tests.console.forms import ConsoleClient, csrf_token_of

ACME = "/console/orgs/acme"
OTHER = "/console/orgs/other"


def cookie_header(response: object, name: str) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    found = [value for value in headers if value.startswith(f"{name}=")]
    assert found, f"no Set-Cookie for {name}"
    return str(found[0])


async def test_pages_need_a_session(http: ConsoleClient) -> None:
    response = await http.get(f"{ACME}/users?q=ada")
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/console/sign-in?next=%2Fconsole%2Forgs%2Facme%2Fusers%3Fq%3Dada"
    )
    posted = await http.post(f"{ACME}/mappings", data={"group": "x"})
    assert posted.status_code == 303
    assert posted.headers["location"] == "/console/sign-in"


async def test_sign_in_returns_to_requested_page(
    http: ConsoleClient, console: Console
) -> None:
    form = await http.get("/console/sign-in?next=/console/orgs/acme/users")
    response = await http.post(
        "/console/sign-in",
        data={
            "secret": console.keys.operator,
            "csrf_token": csrf_token_of(form.text),
            "next": "/console/orgs/acme/users",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/orgs/acme/users"


@pytest.mark.parametrize("target", ["https://evil.test/", "//evil.test/console"])
async def test_sign_in_ignores_foreign_next(
    http: ConsoleClient, console: Console, target: str
) -> None:
    form = await http.get("/console/sign-in")
    response = await http.post(
        "/console/sign-in",
        data={
            "secret": console.keys.operator,
            "csrf_token": csrf_token_of(form.text),
            "next": target,
        },
    )
    assert response.headers["location"] == "/console/orgs"


async def test_session_cookie_flags_over_http(
    http: ConsoleClient, console: Console
) -> None:
    response = await http.sign_in(console.keys.operator)
    cookie = cookie_header(response, "scimr_console")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie


async def test_session_cookie_secure_for_https_base_url(
    database: Database, database_url: str
) -> None:
    console = await make_console(
        database, database_url, public_base_url="https://console.test"
    )
    async with console.client() as http:
        form = await http.get("/console/sign-in")
        # httpx sends no Secure cookie over plain HTTP, so the test sends it.
        sign_in_cookie = form.cookies["scimr_console_sign_in"]
        response = await http.post(
            "/console/sign-in",
            data={
                "secret": console.keys.operator,
                "csrf_token": csrf_token_of(form.text),
            },
            headers={"Cookie": f"scimr_console_sign_in={sign_in_cookie}"},
        )
    assert "Secure" in cookie_header(form, "scimr_console_sign_in")
    cookie = cookie_header(response, "scimr_console")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


async def test_session_cookie_secure_for_https_request(console: Console) -> None:
    async with console.client("https://scim.test") as http:
        response = await http.sign_in(console.keys.operator)
    assert "Secure" in cookie_header(response, "scimr_console")


async def test_sign_in_form_without_csrf_is_rejected(
    http: ConsoleClient, console: Console
) -> None:
    response = await http.post(
        "/console/sign-in", data={"secret": console.keys.operator}
    )
    assert response.status_code == 403
    assert "Form rejected" in response.text
    assert "scimr_console=" not in response.headers.get("set-cookie", "")


async def test_forged_form_without_csrf_gets_403(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.operator)
    response = await http.post(
        f"{ACME}/provisioning/tokens",
        data={"name": "Forged", "expires_in_days": "30"},
    )
    assert response.status_code == 403
    assert "CSRF token" in response.text
    async with console.database.read() as session:
        names = (await session.scalars(select(ScimToken.name))).all()
    assert "Forged" not in names


async def test_form_with_wrong_csrf_gets_403(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.operator)
    response = await http.post(
        f"{ACME}/mappings",
        data={"csrf_token": "not-the-token", "group": "G", "role": "global_admin"},
    )
    assert response.status_code == 403
    async with console.database.read() as session:
        assert (await session.scalar(select(RoleMapping))) is None


async def test_csrf_token_of_another_session_gets_403(console: Console) -> None:
    async with console.client() as first, console.client() as second:
        await first.sign_in(console.keys.operator)
        await second.sign_in(console.keys.operator)
        page = await first.get(f"{ACME}/mappings")
        response = await second.post(
            f"{ACME}/mappings",
            data={
                "csrf_token": csrf_token_of(page.text),
                "group": "G",
                "role": "global_admin",
            },
        )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        OTHER,
        f"{OTHER}/provisioning",
        f"{OTHER}/provisioning/tokens/new",
        f"{OTHER}/mappings",
        f"{OTHER}/reconciliation",
        f"{OTHER}/users",
        f"{OTHER}/runs/00000000-0000-0000-0000-000000000000",
        "/console/orgs/missing/provisioning",
    ],
)
async def test_org_admin_gets_404_for_other_org(
    http: ConsoleClient, console: Console, path: str
) -> None:
    await http.sign_in(console.keys.acme_admin)
    response = await http.get(path)
    assert response.status_code == 404
    assert "was not found, or you are not allowed to see it" in response.text


async def test_org_admin_cannot_post_to_other_org(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.acme_admin)
    page = await http.get(f"{ACME}/provisioning")
    response = await http.post(
        f"{OTHER}/provisioning/tokens/{console.other.token_id}/revoke",
        data={"csrf_token": csrf_token_of(page.text)},
    )
    assert response.status_code == 404
    async with console.database.read() as session:
        token = await session.get(ScimToken, console.other.token_id)
    assert token is not None
    assert token.revoked_at is None


async def test_org_admin_lands_on_own_org(
    http: ConsoleClient, console: Console
) -> None:
    signed = await http.sign_in(console.keys.acme_admin)
    assert signed.headers["location"] == f"{ACME}/provisioning"
    listing = await http.get("/console/orgs")
    assert listing.status_code == 303
    assert listing.headers["location"] == f"{ACME}/provisioning"


async def test_operator_lists_every_org(http: ConsoleClient, console: Console) -> None:
    await http.sign_in(console.keys.operator)
    listing = await http.get("/console/orgs")
    assert listing.status_code == 200
    assert f'href="{ACME}/provisioning"' in listing.text
    assert f'href="{OTHER}/provisioning"' in listing.text
    searched = await http.get("/console/orgs?q=oth")
    assert f'href="{ACME}/provisioning"' not in searched.text
    assert f'href="{OTHER}/provisioning"' in searched.text
    assert '<p class="count">1 organization</p>' in searched.text
    assert '<p class="count">2 organizations</p>' in listing.text


async def test_failed_sign_ins_are_throttled(
    database: Database, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    console = await make_console(
        database, database_url, sign_in_max_failures=3, sign_in_window_seconds=600
    )
    wrong = "scimr_admin_wrong-secret-value"
    caplog.set_level(logging.INFO)
    async with console.client() as http:
        for _ in range(3):
            failed = await http.sign_in(wrong)
            assert failed.status_code == 401
            assert "This key or credential is not valid" in failed.text
        blocked = await http.sign_in(console.keys.operator)
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.text
    assert "Try again in" in blocked.text
    assert 590 <= int(blocked.headers["retry-after"]) <= 600
    assert "scimr_console=" not in blocked.headers.get("set-cookie", "")
    assert caplog.text.count("Console sign-in failed from") == 3
    assert wrong not in caplog.text
    assert console.keys.operator not in caplog.text


async def test_successful_sign_in_clears_failures(
    database: Database, database_url: str
) -> None:
    console = await make_console(database, database_url, sign_in_max_failures=2)
    async with console.client() as http:
        await http.sign_in("wrong")
        signed = await http.sign_in(console.keys.operator)
        assert signed.status_code == 303
        http.cookies.clear()
        await http.sign_in("wrong")
        again = await http.sign_in(console.keys.operator)
    assert again.status_code == 303


async def test_empty_secret_names_the_field(http: ConsoleClient) -> None:
    response = await http.sign_in("  ")
    assert response.status_code == 400
    assert 'aria-invalid="true"' in response.text
    assert "Enter your operator key" in response.text


async def test_sign_out_ends_session(http: ConsoleClient, console: Console) -> None:
    await http.sign_in(console.keys.operator)
    cookie = http.cookies.get("scimr_console")
    assert cookie
    response = await http.submit(f"{ACME}/provisioning", "/console/sign-out")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?notice=signed-out"
    http.cookies.set("scimr_console", cookie, path="/console")
    after = await http.get(f"{ACME}/provisioning")
    assert after.status_code == 303
    assert after.headers["location"].startswith("/console/sign-in")


async def test_revoked_credential_ends_session(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.acme_admin)
    async with console.database.write() as session:
        found = await credentials.list_credentials(session, console.acme.org)
        await credentials.revoke_credential(session, console.acme.org, found[0].id)
    response = await http.get(f"{ACME}/provisioning")
    assert response.status_code == 303


async def test_generated_token_is_audited_with_actor(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.acme_admin)
    response = await http.submit(
        f"{ACME}/provisioning",
        f"{ACME}/provisioning/tokens",
        {"name": "Okta Production", "expires_in_days": "90"},
    )
    assert response.status_code == 200
    assert "It will not be shown again." in response.text
    assert response.headers["cache-control"] == "no-store"
    async with console.database.read() as session:
        event = await session.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "token_created", AuditEvent.actor.is_not(None))
            .order_by(AuditEvent.id.desc())
        )
    assert event is not None
    assert event.source is Source.admin
    assert event.actor == "admin:Ada Lovelace"
    listing = await http.get(f"{ACME}/provisioning")
    assert "Okta Production" in listing.text
    assert "scimr_" not in listing.text.replace("scimr_console", "")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "expires_in_days": "30"}, "Enter a name"),
        ({"name": "x" * 201, "expires_in_days": "30"}, "use at most 200"),
        ({"name": "Okta", "expires_in_days": "0"}, "Expiration &#39;0&#39; is not"),
        ({"name": "Okta", "expires_in_days": "ten"}, "choose a period"),
    ],
)
async def test_token_form_errors_name_field(
    http: ConsoleClient, console: Console, data: dict[str, str], message: str
) -> None:
    await http.sign_in(console.keys.operator)
    response = await http.submit(
        f"{ACME}/provisioning", f"{ACME}/provisioning/tokens", data
    )
    assert response.status_code == 400
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert 'class="field-error"' in response.text


async def test_mapping_add_and_remove(http: ConsoleClient, console: Console) -> None:
    await http.sign_in(console.keys.operator)
    added = await http.submit(
        f"{ACME}/mappings",
        f"{ACME}/mappings",
        {
            "group": "Course Authors",
            "role": "course_management_admin",
            "grant": "limited",
            "objects": "course-101, course-202\ncourse-303",
        },
    )
    assert added.status_code == 303
    async with console.database.read() as session:
        mapping = await session.scalar(select(RoleMapping))
    assert mapping is not None
    assert mapping.object_ids == ["course-101", "course-202", "course-303"]
    page = await http.get(f"{ACME}/mappings")
    assert "course-101, course-202, course-303" in page.text

    removed = await http.submit(
        f"{ACME}/mappings", f"{ACME}/mappings/{mapping.id}/remove"
    )
    assert removed.status_code == 303
    async with console.database.read() as session:
        assert (await session.scalar(select(RoleMapping))) is None
        actions = (
            await session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.resource_type == "RoleMapping"
                )
            )
        ).all()
    assert actions == ["mapping_added", "mapping_removed"]


async def test_mapping_remove_is_named_button(
    http: ConsoleClient, console: Console
) -> None:
    """Remove is a button named after its mapping, in a GET form that opens the
    confirmation page when JavaScript is off."""
    await http.sign_in(console.keys.operator)
    for group in ("Dashboard Admins", "Course Authors"):
        await http.submit(
            f"{ACME}/mappings",
            f"{ACME}/mappings",
            {"group": group, "role": "global_admin", "grant": "full"},
        )
    async with console.database.read() as session:
        found = (await session.scalars(select(RoleMapping))).all()
    page = await http.get(f"{ACME}/mappings")
    for mapping in found:
        remove_url = f"{ACME}/mappings/{mapping.id}/remove"
        assert f'<form method="get" action="{remove_url}" class="inline">' in page.text
        hidden = (
            '<span class="visually-hidden"> mapping '
            f"{mapping.group} → Global Administrator</span></button>"
        )
        assert hidden in page.text
    assert '<a href="' + f"{ACME}/mappings/{found[0].id}/remove" not in page.text

    # The GET form's address, with the empty query a browser adds.
    confirm = await http.get(f"{ACME}/mappings/{found[0].id}/remove?")
    assert confirm.status_code == 200
    assert (
        f"Remove the mapping of group “{found[0].group}” to Global Administrator?"
        in confirm.text
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"group": "", "role": "global_admin"}, "Enter the IdP group"),
        ({"group": "G", "role": "owner"}, "Role &#39;owner&#39; is not in the catalog"),
        ({"group": "G", "role": "global_admin", "grant": "limited"}, "needs at least"),
    ],
)
async def test_mapping_form_errors(
    http: ConsoleClient, console: Console, data: dict[str, str], message: str
) -> None:
    await http.sign_in(console.keys.operator)
    response = await http.submit(f"{ACME}/mappings", f"{ACME}/mappings", data)
    assert response.status_code == 400
    assert message in response.text
    assert 'aria-invalid="true"' in response.text


async def test_duplicate_mapping_is_a_field_error(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.operator)
    data = {"group": "Admins", "role": "global_admin", "grant": "full"}
    await http.submit(f"{ACME}/mappings", f"{ACME}/mappings", data)
    again = await http.submit(f"{ACME}/mappings", f"{ACME}/mappings", data)
    assert again.status_code == 409
    assert "is mapped to role" in again.text


async def test_unknown_page_and_bad_page_number(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.operator)
    missing = await http.get("/console/no-such-page")
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    bad = await http.get(f"{ACME}/users?page=-2")
    assert bad.status_code == 400
    assert "Page &#39;-2&#39; is not a valid page number" in bad.text


async def test_reconciliation_without_connector(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.operator)
    page = await http.get(f"{ACME}/reconciliation")
    assert page.status_code == 200
    assert "No connector is set" in page.text
    assert "<svg" in page.text
    assert "Drift per day as a table" in page.text
    # Drift excludes role changes (docs/reconciliation.md).
    assert "Every applied change other than a role change is drift" in page.text
    assert "Every applied change is drift" not in page.text


async def test_drift_chart_has_narrow_layout(
    http: ConsoleClient, console: Console
) -> None:
    """The page carries a wide and a narrow chart; the style sheet shows one."""
    await http.sign_in(console.keys.operator)
    page = await http.get(f"{ACME}/reconciliation")
    assert 'viewBox="0 0 960 260"' in page.text
    assert 'class="drift-chart wide"' in page.text
    assert 'viewBox="0 0 360 240"' in page.text
    assert 'class="drift-chart narrow"' in page.text
    assert 'aria-labelledby="drift-narrow-title drift-narrow-desc"' in page.text
    assert "chart-scroll" not in page.text


async def test_revoked_token_row_has_no_actions(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.operator)
    before = await http.get(f"{ACME}/provisioning")
    assert '<td class="row-actions no-actions">' not in before.text
    assert "Actions for token Test token" in before.text
    revoked = await http.submit(
        f"{ACME}/provisioning",
        f"{ACME}/provisioning/tokens/{console.acme.token_id}/revoke",
    )
    assert revoked.status_code == 303
    after = await http.get(f"{ACME}/provisioning")
    assert '<td class="row-actions no-actions"></td>' in after.text
    assert "Actions for token Test token" not in after.text
    style = await http.get("/console/static/console.css")
    assert "td.row-actions.no-actions { display: none; }" in style.text


async def test_favicon_is_linked_and_served(
    http: ConsoleClient, console: Console
) -> None:
    sign_in = await http.get("/console/sign-in")
    link = '<link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml">'
    assert link in sign_in.text
    await http.sign_in(console.keys.operator)
    page = await http.get(f"{ACME}/users")
    assert link in page.text
    icon = await http.get("/console/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.text.startswith("<svg ")


async def test_pages_send_security_headers(
    http: ConsoleClient, console: Console
) -> None:
    await http.sign_in(console.keys.operator)
    page = await http.get(f"{ACME}/users")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    script = await http.get("/console/static/console.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    hidden = await http.get("/console/static/..%2Frendering.py")
    assert hidden.status_code == 404


async def test_sign_in_from_older_tab_works(
    http: ConsoleClient, console: Console
) -> None:
    first = await http.get("/console/sign-in")
    await http.get("/console/sign-in")
    response = await http.post(
        "/console/sign-in",
        data={"secret": console.keys.operator, "csrf_token": csrf_token_of(first.text)},
    )
    assert response.status_code == 303
