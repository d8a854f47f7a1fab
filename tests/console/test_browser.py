"""The console in a real browser: Debian's Chromium against a real ``serve``.

One server and one browser serve the whole module; each test signs in afresh.
The tests run in file order, because the last ones reconcile the demo.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.browser import NARROW, launch_chromium, missing_browser
from tests.support.console_demo import (
    LEAVER_USER_NAME,
    DemoSeed,
    remove_member,
    seed_demo,
)
from tests.support.databases import in_ci
from tests.support.server import ServeProcess, serve

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.slow

TIMEOUT_MS = 15_000


@dataclass(frozen=True)
class Demo:
    seed: DemoSeed
    server: ServeProcess

    @property
    def org_url(self) -> str:
        return f"{self.server.base_url}/console/orgs/{self.seed.org}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    reason = missing_browser()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI=true needs the browser tests: {reason}")
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("console")
    url = f"sqlite+aiosqlite:///{work / 'demo.db'}"
    seed = asyncio.run(seed_demo(url, work))
    with serve(url, work, extra_env=seed.serve_env()) as server:
        yield Demo(seed, server)


@pytest.fixture(scope="module")
def browser(
    demo: Demo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium") / "profile"
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, profile)
        context.set_default_timeout(TIMEOUT_MS)
        context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=demo.server.base_url
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: BrowserContext, demo: Demo) -> Iterator[Page]:
    browser.clear_cookies()
    opened = browser.new_page()
    try:
        yield opened
    finally:
        opened.close()


def sign_in(page: Page, demo: Demo, secret: str) -> None:
    page.goto(f"{demo.server.base_url}/console")
    page.get_by_label("Operator key or admin credential").fill(secret)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def operator(page: Page, demo: Demo) -> Page:
    """A page signed in with the demo's operator key."""
    sign_in(page, demo, demo.seed.operator_key)
    page.wait_for_url(re.compile(r"/console/orgs$"))
    return page


def test_sign_in_operator_and_org_admin(page: Page, demo: Demo) -> None:
    from playwright.sync_api import expect

    sign_in(page, demo, "scimr_admin_not-a-real-credential")
    expect(page.get_by_text("This key or credential is not valid")).to_be_visible()
    expect(page.get_by_label("Operator key or admin credential")).to_have_attribute(
        "aria-invalid", "true"
    )

    sign_in(page, demo, demo.seed.operator_key)
    page.wait_for_url(re.compile(r"/console/orgs$"))
    page.get_by_role("link", name="Northwind Learning").click()
    expect(
        page.get_by_role("heading", name="SCIM provisioning", level=1)
    ).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    sign_in(page, demo, demo.seed.admin_secret)
    page.wait_for_url(f"{demo.org_url}/provisioning")
    expect(page.get_by_text("admin:Ada Lovelace")).to_be_visible()
    expect(page.get_by_role("link", name="Switch organization")).to_have_count(0)


def test_token_generate_copy_use_revoke(operator: Page, demo: Demo) -> None:
    from playwright.sync_api import expect

    page = operator
    page.goto(f"{demo.org_url}/provisioning")
    page.get_by_role("link", name="Generate token").click()
    dialog = page.get_by_role("dialog", name="Generate token")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Token name").fill("Entra ID Test")
    dialog.get_by_label("Expiration period").select_option("90")
    dialog.get_by_role("button", name="Generate token").click()

    # Shown once, with a warning and a Copy button.
    created = page.locator("section.created")
    expect(created.get_by_text("It will not be shown again.")).to_be_visible()
    secret = created.get_by_label("New SCIM token").input_value()
    assert secret.startswith("scimr_")
    created.get_by_role("button", name="Copy").click()
    expect(created.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret

    # The token works for SCIM at once.
    bearer = {"Authorization": f"Bearer {secret}"}
    users = httpx.get(f"{demo.server.scim_url}/Users", headers=bearer, timeout=10)
    assert users.status_code == 200

    # A reload shows the page afresh: the token is listed, its secret is gone.
    page.reload()
    assert page.url == f"{demo.org_url}/provisioning"
    assert secret not in page.content()
    row = page.locator("tr", has_text="Entra ID Test")
    expect(row.get_by_text("active")).to_be_visible()
    expect(row.get_by_text("operator:")).to_be_visible()

    # Revoke through the row's menu and the confirmation dialog.
    row.get_by_label("Actions for token Entra ID Test").click()
    row.get_by_role("link", name="Revoke").click()
    confirm = page.get_by_role("dialog", name="Revoke token “Entra ID Test”?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("The token is revoked.")).to_be_visible()
    expect(row.get_by_text("revoked")).to_be_visible()

    refused = httpx.get(f"{demo.server.scim_url}/Users", headers=bearer, timeout=10)
    assert refused.status_code == 401


def focused_name(page: Page) -> str:
    """Return the accessible name of the focused element, as aria-label or text."""
    name: str = page.evaluate(
        "() => document.activeElement.getAttribute('aria-label')"
        " || document.activeElement.textContent.trim()"
    )
    return name


def test_dialogs_return_focus_on_close(operator: Page, demo: Demo) -> None:
    """Escape and Cancel put focus back on the control that opened the dialog,
    or on the menu's Actions button when that control was a menu item."""
    from playwright.sync_api import expect

    page = operator
    page.goto(f"{demo.org_url}/provisioning")
    generate = page.get_by_role("link", name="Generate token")
    generate.click()
    expect(page.get_by_role("dialog", name="Generate token")).to_be_visible()
    page.keyboard.press("Escape")
    expect(generate).to_be_focused()

    row = page.locator("tr", has_text="Okta Production")
    actions = row.get_by_label("Actions for token Okta Production")
    confirm = page.get_by_role("dialog", name="Revoke token “Okta Production”?")
    actions.click()
    row.get_by_role("link", name="Revoke").click()
    expect(confirm).to_be_visible()
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    expect(actions).to_be_focused()

    actions.click()
    row.get_by_role("link", name="Revoke").click()
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(actions).to_be_focused()
    expect(row.get_by_text("active")).to_be_visible()


def test_remove_mapping_button_opens_on_space(operator: Page, demo: Demo) -> None:
    from playwright.sync_api import expect

    page = operator
    page.goto(f"{demo.org_url}/mappings")
    remove = page.get_by_role(
        "button", name="Remove mapping Dashboard Admins → Global Administrator"
    )
    expect(remove).to_have_count(1)
    names = page.locator("td.row-actions button").evaluate_all(
        "buttons => buttons.map(button => button.textContent.trim())"
    )
    assert len(names) == len(set(names)) > 1

    remove.focus()
    page.keyboard.press("Space")
    confirm = page.get_by_role(
        "dialog",
        name="Remove the mapping of group “Dashboard Admins” to Global Administrator?",
    )
    expect(confirm).to_be_visible()
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    expect(remove).to_be_focused()
    assert focused_name(page).startswith("Remove mapping Dashboard Admins")
    assert page.url == f"{demo.org_url}/mappings"


def test_preview_shows_plan_with_reasons(operator: Page, demo: Demo) -> None:
    from playwright.sync_api import expect

    page = operator
    remove_member(demo.seed.directory)
    page.goto(f"{demo.org_url}/reconciliation")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name=re.compile("Preview"))).to_be_visible()
    change = page.locator("td[data-label=Change]", has_text=re.compile("^deactivate$"))
    row = page.locator("table.plan tbody tr", has=change)
    expect(row).to_contain_text(LEAVER_USER_NAME)
    expect(row).to_contain_text("no mapped group of the IdP lists this user")


def test_reconcile_now_then_approve_held(operator: Page, demo: Demo) -> None:
    from playwright.sync_api import expect

    page = operator
    remove_member(demo.seed.directory)
    page.goto(f"{demo.org_url}/reconciliation")
    page.get_by_role("button", name="Reconcile now").click()
    expect(page.get_by_role("heading", name=re.compile("^Run of"))).to_be_visible()
    expect(page.locator(".facts .badge")).to_have_text("held")

    page.goto(f"{demo.org_url}/reconciliation")
    held = page.locator("section.held")
    expect(held).to_contain_text(LEAVER_USER_NAME)
    held.get_by_role("button", name=re.compile("Approve")).click()
    expect(page.get_by_text("The held changes were approved.")).to_be_visible()
    expect(page.locator(".facts .badge")).to_have_text("succeeded")

    page.goto(f"{demo.org_url}/users?q=liskov")
    row = page.locator("table.users tr", has_text=LEAVER_USER_NAME)
    expect(row).to_contain_text("deactivated")


def test_drift_chart_renders_data(operator: Page, demo: Demo) -> None:
    from playwright.sync_api import expect

    page = operator
    page.goto(f"{demo.org_url}/reconciliation")
    bars = page.locator("svg.drift-chart.wide rect.bar")
    expect(bars.first).to_be_visible()
    drift = [
        int(value)
        for value in bars.evaluate_all(
            "bars => bars.map(bar => bar.getAttribute('data-drift'))"
        )
    ]
    assert sum(drift) > 0
    expect(page.locator("#drift-caption")).to_contain_text(" in all, over ")

    page.get_by_text("Drift per day as a table").click()
    table = page.get_by_role("region", name="Drift per day")
    expect(table).to_be_visible()
    assert table.locator("tbody tr").count() == 30


def test_drift_chart_fits_narrow_screen(operator: Page, demo: Demo) -> None:
    """At 390 pixels the narrow chart fits the screen without scrolling, with
    its y-axis in view and axis text at least 12 pixels high."""
    from playwright.sync_api import expect

    page = operator
    page.set_viewport_size(NARROW)  # type: ignore[arg-type]
    page.goto(f"{demo.org_url}/reconciliation")
    expect(page.locator("svg.drift-chart.wide")).to_be_hidden()
    chart = page.locator("svg.drift-chart.narrow")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= NARROW["width"]
    assert chart.locator("rect.bar").count() > 0

    axis = chart.locator("text.axis")
    heights = axis.evaluate_all(
        "labels => labels.map(label => label.getBoundingClientRect().height)"
    )
    assert min(heights) >= 12
    lefts = axis.evaluate_all(
        "labels => labels.map(label => label.getBoundingClientRect().left)"
    )
    assert min(lefts) >= box["x"]
