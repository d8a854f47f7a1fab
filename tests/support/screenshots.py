"""Take screenshots of every console page, at desktop and narrow width.

    .venv/bin/python -m tests.support.screenshots [--out docs/console]

It seeds the demo (with older runs and a held change) in a temporary
directory, starts ``serve`` on 127.0.0.1, and drives Debian's Chromium
(/usr/bin/chromium). Each page is saved as NAME-desktop.png (1280 wide) and
NAME-narrow.png (390 wide).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.browser import DESKTOP, NARROW, launch_chromium, missing_browser
from tests.support.console_demo import DemoSeed, seed_demo
from tests.support.server import serve

WIDTHS = (("desktop", DESKTOP), ("narrow", NARROW))


def _shoot(
    page: object,
    out: Path,
    name: str,
    prepare: Callable[[], None],
    *,
    full_page: bool = True,
) -> None:
    """Prepare the page once at desktop width, then take it at each width.

    A page with an open dialog is taken as the window shows it, because the
    dialog's backdrop covers the window only.
    """
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    prepare()
    for label, viewport in WIDTHS:
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
        path = out / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=full_page)
        print(f"wrote {path}")


def push_profile_change(seed: DemoSeed, scim_url: str) -> None:
    """Rename a user over SCIM, so that its history shows a push as well."""
    headers = {"Authorization": f"Bearer {seed.scim_token}"}
    found = httpx.get(
        f"{scim_url}/Users",
        params={"filter": 'userName eq "grace.hopper@example.com"'},
        headers=headers,
        timeout=10,
    )
    found.raise_for_status()
    user_id = found.json()["Resources"][0]["id"]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "displayName", "value": "Grace B. Hopper"}
        ],
    }
    httpx.patch(
        f"{scim_url}/Users/{user_id}", json=patch, headers=headers, timeout=10
    ).raise_for_status()


def take_all(seed: DemoSeed, base_url: str, out: Path, profile: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    org = f"{base_url}/console/orgs/{seed.org}"
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, profile)
        context.set_default_timeout(15_000)
        page = context.new_page()

        def visit(url: str) -> Callable[[], None]:
            return lambda: page.goto(url) and None

        _shoot(page, out, "sign-in", visit(f"{base_url}/console/sign-in"))
        page.get_by_label("Operator key or admin credential").fill(seed.operator_key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/console/orgs$"))

        _shoot(page, out, "organizations", visit(f"{base_url}/console/orgs"))
        _shoot(page, out, "provisioning", visit(f"{org}/provisioning"))

        def open_dialog() -> None:
            page.goto(f"{org}/provisioning")
            page.get_by_role("link", name="Generate token").click()
            dialog = page.get_by_role("dialog", name="Generate token")
            dialog.get_by_label("Token name").fill("Entra ID Production")
            expect(dialog).to_be_visible()

        _shoot(page, out, "generate-token", open_dialog, full_page=False)

        def generate() -> None:
            open_dialog()
            dialog = page.get_by_role("dialog", name="Generate token")
            dialog.get_by_role("button", name="Generate token").click()
            expect(page.locator("section.created")).to_be_visible()

        _shoot(page, out, "token-created", generate)

        def confirm_revoke() -> None:
            page.goto(f"{org}/provisioning")
            row = page.locator("tr", has_text="Okta Production")
            row.get_by_label("Actions for token Okta Production").click()
            row.get_by_role("link", name="Revoke").click()
            expect(page.locator("#confirm-dialog")).to_be_visible()

        _shoot(page, out, "revoke-token", confirm_revoke, full_page=False)
        _shoot(page, out, "mappings", visit(f"{org}/mappings"))
        _shoot(page, out, "reconciliation", visit(f"{org}/reconciliation"))

        page.goto(f"{org}/reconciliation")
        preview = page.locator("table.runs tbody tr", has_text="dry run").first
        preview.get_by_role("link").click()
        _shoot(page, out, "preview", visit(page.url))

        _shoot(page, out, "users", visit(f"{org}/users"))
        page.goto(f"{org}/users?q=grace")
        page.get_by_role("link", name="grace.hopper@example.com").click()
        _shoot(page, out, "user", visit(page.url))
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("docs/console"),
        help="Folder for the PNG files; created if missing.",
    )
    args = parser.parse_args(argv)
    reason = missing_browser()
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="console-shots-") as temporary:
        work = Path(temporary)
        url = f"sqlite+aiosqlite:///{work / 'demo.db'}"
        seed = asyncio.run(seed_demo(url, work, with_history=True))
        with serve(url, work, extra_env=seed.serve_env()) as server:
            push_profile_change(seed, server.scim_url)
            take_all(seed, server.base_url, args.out.resolve(), work / "profile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
