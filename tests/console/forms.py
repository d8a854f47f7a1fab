"""An HTTP client that signs in to the console and posts its forms like a browser."""

from __future__ import annotations

import re
from html import unescape

import httpx

HIDDEN_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_token_of(page: str) -> str:
    """Return the CSRF token of the first form on a page."""
    found = HIDDEN_CSRF.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return unescape(found.group(1))


class ConsoleClient(httpx.AsyncClient):
    async def sign_in(self, secret: str) -> httpx.Response:
        """Open the sign-in page, then post the form with its CSRF token."""
        form = await self.get("/console/sign-in")
        return await self.post(
            "/console/sign-in",
            data={"secret": secret, "csrf_token": csrf_token_of(form.text)},
        )

    async def submit(
        self, page_path: str, action: str, data: dict[str, str] | None = None
    ) -> httpx.Response:
        """Post a form of a page, with the CSRF token that the page carries."""
        page = await self.get(page_path)
        assert page.status_code == 200, page.text
        fields = {"csrf_token": csrf_token_of(page.text), **(data or {})}
        return await self.post(action, data=fields)
