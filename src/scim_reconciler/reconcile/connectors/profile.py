"""Per-IdP differences in error bodies, retry hints and rate-limit headers.

Each IdP connector module defines one ``IdpProfile`` subclass. The shared HTTP
layer (``http.py``) and the failure mapping (``failures.py``) ask it for the
IdP's error text, its retry hint and its rate-limit headers, so that nothing
IdP-specific leaks into them.
"""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

MAX_DETAIL_LENGTH = 300


@dataclass(frozen=True)
class RateLimit:
    """The rate-limit state that an IdP reports in its response headers."""

    remaining: int
    # Wall-clock time (epoch seconds, on our clock) when the window resets.
    reset_at: float
    limit: int | None = None


class IdpProfile:
    """Error texts, fixes, retry hints and rate limits of one IdP's API."""

    name = "IdP"
    # What an operator does after a 401: where to make a new credential.
    credential_fix = "check the credential in the connector configuration"
    # What an operator grants after a 403: the permission or scope to add.
    permission_fix = "grant the credential read access to groups and users"

    def error_detail(self, response: httpx.Response) -> str | None:
        """Return the IdP's own error message from a response body, if any."""
        body = json_body(response)
        if isinstance(body, dict):
            for key in ("error_description", "message", "error"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    return value
        return None

    def is_permission_denied(self, response: httpx.Response) -> bool:
        """Tell a missing permission from a bad credential."""
        return response.status_code == 403

    def retry_after(self, response: httpx.Response, now: float) -> float | None:
        """Return the wait in seconds that the response requests, or None."""
        return retry_after_header(response, now)

    def rate_limit(self, response: httpx.Response, now: float) -> RateLimit | None:
        """Read the rate-limit headers; None when the IdP sends none."""
        return None

    def rate_limit_bucket(self, url: httpx.URL) -> str:
        """Name the rate-limit window that a request to ``url`` counts against."""
        return ""


def json_body(response: httpx.Response) -> Any:
    """Parse a response body as JSON; None when it is empty, HTML or broken."""
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def clean_detail(text: str | None) -> str | None:
    """Collapse whitespace and cut an IdP's error text to a readable length."""
    if not text:
        return None
    flat = " ".join(text.split())
    if len(flat) > MAX_DETAIL_LENGTH:
        flat = flat[: MAX_DETAIL_LENGTH - 3] + "..."
    return flat


def retry_after_header(response: httpx.Response, now: float) -> float | None:
    """Parse Retry-After as seconds (fractional ones too) or as an HTTP date."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def server_clock_offset(response: httpx.Response, now: float) -> float:
    """Return how far the server's Date header is ahead of our clock, in seconds.

    An epoch reset time is relative to the server's clock, so waiting until it
    on our own clock would be off by any clock skew between the two.
    """
    value = response.headers.get("Date")
    if not value:
        return 0.0
    try:
        server_now = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return 0.0
    return server_now - now


_ID_SEGMENT = re.compile(r"^(?=.*\d)[A-Za-z0-9_-]{6,}$")


def path_template(url: httpx.URL) -> str:
    """Replace id-like path segments with ``{id}``: ``/api/v1/groups/{id}/users``."""
    segments = [
        "{id}" if _ID_SEGMENT.match(segment) else segment
        for segment in url.path.split("/")
    ]
    return "/".join(segments)
