"""The one place where IdP HTTP failures become the project's connector errors.

Retryable failures (timeouts, dropped connections, 429, 5xx, and bodies that
are not valid JSON) are raised as ``TransientFailure`` inside the retry loop
and turn into ``ConnectorUnavailableError`` once retries are exhausted. Every
other failure maps to the error class that names what the operator must fix:

    3xx (a redirect, never followed)          ConnectorConfigError
    401 (bad, expired or revoked credential)  ConnectorConfigError
    403 (missing permission or scope)         ConnectorPermissionError
    404 on a group                            GroupNotFoundError
    404 elsewhere, other 4xx                  ConnectorConfigError

Messages name the IdP, the request (method and path, never headers or query
values that could carry a secret) and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from scim_reconciler.errors import (
    ConnectorConfigError,
    ConnectorError,
    ConnectorPermissionError,
    ConnectorUnavailableError,
    GroupNotFoundError,
)
from scim_reconciler.reconcile.connectors.profile import (
    IdpProfile,
    clean_detail,
    json_body,
)

# OAuth 2.0 token endpoint error codes (RFC 6749, section 5.2) that mean the
# client credential itself is wrong.
_CREDENTIAL_ERRORS = {"invalid_client", "unauthorized_client", "invalid_grant"}


class TransientFailure(Exception):
    """A failed attempt that may succeed when retried."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        timeout: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.timeout = timeout


def describe_request(method: str, url: httpx.URL) -> str:
    """Name a request by method and path, e.g. ``GET /api/v1/groups/00g1/users``."""
    return f"{method} {url.path}"


def transport_failure(exc: httpx.RequestError) -> TransientFailure:
    """Describe a timeout or connection failure without the request's headers."""
    if isinstance(exc, httpx.ConnectTimeout):
        return TransientFailure("connecting timed out", timeout=True)
    if isinstance(exc, httpx.ReadTimeout):
        return TransientFailure("the response timed out", timeout=True)
    if isinstance(exc, httpx.TimeoutException):
        return TransientFailure("the request timed out", timeout=True)
    if isinstance(exc, httpx.ConnectError):
        return TransientFailure("the connection failed")
    if isinstance(exc, httpx.RemoteProtocolError):
        return TransientFailure(
            "the connection closed before the response was complete"
        )
    return TransientFailure(f"the request failed ({type(exc).__name__})")


def status_failure(
    profile: IdpProfile, response: httpx.Response, now: float
) -> TransientFailure:
    """Describe a 429 or 5xx response, with the IdP's hint of how long to wait."""
    detail = clean_detail(profile.error_detail(response))
    reason = f"HTTP {response.status_code}"
    if detail:
        reason += f" ({detail})"
    return TransientFailure(
        reason,
        status=response.status_code,
        retry_after=profile.retry_after(response, now),
    )


@dataclass(frozen=True)
class RetryOutcome:
    """Attempts and elapsed seconds of a request whose retries failed."""

    attempts: int
    elapsed: float
    # The wait the IdP requested when it exceeded max_retry_seconds.
    wait_beyond_limit: float | None = None


def exhausted(
    profile: IdpProfile, request: str, failure: TransientFailure, outcome: RetryOutcome
) -> ConnectorUnavailableError:
    """Build the error raised when retries of a transient failure are used up."""
    tried = (
        f"after {outcome.attempts} attempt{'s' if outcome.attempts != 1 else ''} "
        f"over {outcome.elapsed:.0f} s"
    )
    if outcome.wait_beyond_limit is not None:
        tried += (
            f", and {profile.name} requested a wait of "
            f"{outcome.wait_beyond_limit:.0f} s more, beyond max_retry_seconds"
        )
    name = profile.name
    if failure.status == 429:
        return ConnectorUnavailableError(
            f"{name} kept rate-limiting {request} (HTTP 429) {tried}. Retry later, "
            "or lower max_concurrency or rate_limit_share so that runs use less of "
            "the rate limit."
        )
    if failure.status is not None:
        return ConnectorUnavailableError(
            f"{name} failed {request} with {failure.reason} {tried}. {name} may be "
            "down or overloaded: retry later."
        )
    if failure.timeout:
        return ConnectorUnavailableError(
            f"{name} did not respond to {request}: {failure.reason} {tried}. Retry "
            "later, or raise connect_timeout_seconds or read_timeout_seconds."
        )
    return ConnectorUnavailableError(
        f"{name} could not be read for {request}: {failure.reason} {tried}. Check "
        "base_url and the network, then retry."
    )


def raise_for_status(
    profile: IdpProfile,
    response: httpx.Response,
    request: str,
    not_found: str | None = None,
) -> None:
    """Raise the connector error for a 3xx or 4xx response; return on success.

    ``not_found`` is the message for a 404 on a group; without it a 404 means
    the URL is wrong, which is a configuration error.
    """
    status = response.status_code
    if response.is_success:
        return
    if response.is_redirect:
        location = response.headers.get("Location", "another URL")
        raise ConnectorConfigError(
            f"{profile.name} redirected {request} (HTTP {status}) to {location}: "
            "set base_url in the connector configuration to the URL it redirects to."
        )
    detail = clean_detail(profile.error_detail(response))
    detail_text = f": {detail.rstrip('.')}" if detail else ""
    name = profile.name
    oauth_error = _oauth_error(response)

    error: ConnectorError
    if oauth_error == "invalid_scope" or (
        oauth_error is None and profile.is_permission_denied(response)
    ):
        error = ConnectorPermissionError(
            f"{name} denied {request} (HTTP {status}){detail_text}. "
            f"{_sentence(profile.permission_fix)}"
        )
    elif status == 401 or oauth_error in _CREDENTIAL_ERRORS:
        error = ConnectorConfigError(
            f"{name} rejected the credential for {request} "
            f"(HTTP {status}){detail_text}. The credential is invalid, expired or "
            "revoked: "
            f"{profile.credential_fix}."
        )
    elif status == 404 and not_found is not None:
        error = GroupNotFoundError(f"{not_found} ({request}, HTTP 404{detail_text}).")
    elif status == 404:
        error = ConnectorConfigError(
            f"{name} has no {request} (HTTP 404){detail_text}. Check base_url in the "
            "connector configuration."
        )
    else:
        error = ConnectorConfigError(
            f"{name} rejected {request} (HTTP {status}){detail_text}. Check the "
            "connector configuration."
        )
    raise error


def _oauth_error(response: httpx.Response) -> str | None:
    body = json_body(response)
    if isinstance(body, dict):
        code = body.get("error")
        if isinstance(code, str):
            return code
    return None


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
