"""The HTTP seam of the IdP connectors: one client, retries, a rate-limit budget
and bounded concurrency.

Every IdP request goes through ``IdpHttp.request_json``. It retries timeouts,
dropped connections, 429 and 5xx responses, and bodies that are not valid JSON
(a truncated page must never pass for a short one), honouring the IdP's own
hint of how long to wait. Attempts and total time are bounded by
``RetrySettings``. Each retry logs one WARNING. Failures that retrying cannot
fix are mapped to connector errors in ``failures.py``.

Time comes from ``Timing``, so tests control the clock and never sleep.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from scim_reconciler.errors import (
    ConnectorConfigError,
    ConnectorError,
    ConnectorUnavailableError,
    GroupNotFoundError,
)
from scim_reconciler.observability import metrics
from scim_reconciler.reconcile.connectors.failures import (
    RetryOutcome,
    TransientFailure,
    describe_request,
    exhausted,
    raise_for_status,
    status_failure,
    transport_failure,
)
from scim_reconciler.reconcile.connectors.idp_settings import IdpApiSettings
from scim_reconciler.reconcile.connectors.profile import IdpProfile
from scim_reconciler.reconcile.connectors.ratelimit import RateLimitBudget
from scim_reconciler.reconcile.model import IdpGroup

if TYPE_CHECKING:
    from scim_reconciler.reconcile.connectors.auth import Authenticator

logger = logging.getLogger(__name__)

USER_AGENT = "scim-reconciler"


@dataclass(frozen=True)
class RetrySettings:
    """Attempt and time limits for retrying a failed IdP request."""

    max_attempts: int = 5
    # Bound on the whole request, waits included: a retry whose wait would end
    # later than this is not made.
    max_elapsed_seconds: float = 120.0
    # Exponential backoff, used when the IdP gives no hint of its own.
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0


@dataclass(frozen=True)
class Timing:
    """The clock (epoch seconds) and sleep that retries and the budget use."""

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass(frozen=True)
class HttpSettings:
    """Client, retry and budget settings shared by all IdP connectors."""

    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 30.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    max_concurrency: int = 4
    rate_limit_share: float = 0.5
    max_rate_limit_wait_seconds: float = 60.0

    @classmethod
    def from_config(cls, config: IdpApiSettings) -> HttpSettings:
        return cls(
            connect_timeout_seconds=config.connect_timeout_seconds,
            read_timeout_seconds=config.read_timeout_seconds,
            retry=RetrySettings(
                max_attempts=config.max_attempts,
                max_elapsed_seconds=config.max_retry_seconds,
            ),
            max_concurrency=config.max_concurrency,
            rate_limit_share=config.rate_limit_share,
            max_rate_limit_wait_seconds=config.max_rate_limit_wait_seconds,
        )


def new_client(settings: HttpSettings) -> httpx.AsyncClient:
    """Create the client a connector owns: timeouts set, connections reused."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.read_timeout_seconds,
            connect=settings.connect_timeout_seconds,
        ),
        limits=httpx.Limits(
            max_connections=settings.max_concurrency,
            max_keepalive_connections=settings.max_concurrency,
        ),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )


@dataclass(frozen=True)
class JsonResponse:
    """A successful IdP response with its body parsed."""

    url: httpx.URL
    headers: httpx.Headers
    body: Any
    links: dict[str, dict[str, str]]


class _RetryPolicy:
    """Wait, stop and log decisions for the retries of one request."""

    def __init__(self, retry: RetrySettings, timing: Timing, idp: str, label: str):
        self.retry = retry
        self.timing = timing
        self.idp = idp
        self.label = label
        self.started = timing.clock()
        self.attempts = 0
        self.wait_beyond_limit: float | None = None

    def wait(self, state: RetryCallState) -> float:
        """Return the IdP's requested wait, or else exponential backoff."""
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, TransientFailure) and failure.retry_after is not None:
            return failure.retry_after
        backoff = self.retry.initial_backoff_seconds * 2 ** (state.attempt_number - 1)
        return float(min(backoff, self.retry.max_backoff_seconds))

    def stop(self, state: RetryCallState) -> bool:
        """Stop after max_attempts, or when the next wait would pass the time limit."""
        if state.attempt_number >= self.retry.max_attempts:
            return True
        if self.elapsed() + state.upcoming_sleep > self.retry.max_elapsed_seconds:
            self.wait_beyond_limit = state.upcoming_sleep
            return True
        return False

    def log(self, state: RetryCallState) -> None:
        metrics.count_idp_retry(self.idp)
        failure = state.outcome.exception() if state.outcome else None
        reason = failure.reason if isinstance(failure, TransientFailure) else "?"
        logger.warning(
            "%s %s failed: %s; retry %d of %d in %.1f s",
            self.idp,
            self.label,
            reason,
            state.attempt_number,
            self.retry.max_attempts - 1,
            state.upcoming_sleep,
        )

    def elapsed(self) -> float:
        return self.timing.clock() - self.started

    def outcome(self) -> RetryOutcome:
        return RetryOutcome(self.attempts, self.elapsed(), self.wait_beyond_limit)


class IdpHttp:
    """Client of one IdP API: authentication, retries and rate limits."""

    def __init__(
        self,
        profile: IdpProfile,
        client: httpx.AsyncClient,
        settings: HttpSettings,
        *,
        auth: Authenticator | None = None,
        timing: Timing | None = None,
    ) -> None:
        self.profile = profile
        self.client = client
        self.settings = settings
        self.auth = auth
        self.timing = timing or Timing()
        self.budget = RateLimitBudget(
            profile.name,
            share=settings.rate_limit_share,
            max_wait_seconds=settings.max_rate_limit_wait_seconds,
            clock=self.timing.clock,
            sleep=self.timing.sleep,
        )
        self._slots = asyncio.Semaphore(settings.max_concurrency)

    async def get_json(
        self,
        url: str | httpx.URL,
        params: Mapping[str, str | int] | None = None,
        *,
        not_found: str | None = None,
    ) -> JsonResponse:
        """GET ``url`` as an authenticated JSON request."""
        return await self.request_json("GET", url, params=params, not_found=not_found)

    async def request_json(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        params: Mapping[str, str | int] | None = None,
        content: str | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        not_found: str | None = None,
    ) -> JsonResponse:
        """Send a request and return its parsed JSON body.

        An authenticated request that gets 401 is sent once more with a new
        token, because OAuth tokens can be revoked before they expire.
        Raises a ``ConnectorError`` subclass on every failure.
        """
        request = httpx.Request(method, url, params=params)
        label = describe_request(method, request.url)
        renewed = False
        while True:
            response, body = await self._send_with_retries(
                method, request.url, content, headers, authenticated, label
            )
            can_renew = authenticated and self.auth is not None and self.auth.renewable
            if response.status_code == 401 and can_renew and not renewed:
                assert self.auth is not None
                self.auth.invalidate()
                renewed = True
                continue
            raise_for_status(self.profile, response, label, not_found)
            links = {str(rel): link for rel, link in response.links.items()}
            return JsonResponse(response.url, response.headers, body, links)

    async def _send_with_retries(
        self,
        method: str,
        url: httpx.URL,
        content: str | None,
        headers: Mapping[str, str] | None,
        authenticated: bool,
        label: str,
    ) -> tuple[httpx.Response, Any]:
        policy = _RetryPolicy(
            self.settings.retry, self.timing, self.profile.name, label
        )
        # The first attempt runs outside tenacity, whose set-up costs about a
        # third of a request's own work. Its failure is raised again as
        # tenacity's first attempt, so waits, limits and warnings are unchanged.
        first_failure: TransientFailure | None
        result: tuple[httpx.Response, Any]
        policy.attempts += 1
        try:
            return await self._attempt(method, url, content, headers, authenticated)
        except TransientFailure as failure:
            first_failure = failure
        retrying = AsyncRetrying(
            sleep=self.timing.sleep,
            stop=policy.stop,
            wait=policy.wait,
            retry=retry_if_exception_type(TransientFailure),
            before_sleep=policy.log,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if first_failure is not None:
                        replayed, first_failure = first_failure, None
                        raise replayed
                    policy.attempts += 1
                    result = await self._attempt(
                        method, url, content, headers, authenticated
                    )
        except TransientFailure as failure:
            raise exhausted(self.profile, label, failure, policy.outcome()) from None
        return result

    async def _attempt(
        self,
        method: str,
        url: httpx.URL,
        content: str | None,
        headers: Mapping[str, str] | None,
        authenticated: bool,
    ) -> tuple[httpx.Response, Any]:
        request_headers = dict(headers or {})
        if authenticated and self.auth is not None:
            # Outside the slot: fetching a token is a request of its own.
            request_headers["Authorization"] = await self.auth.authorization(self)
        bucket = self.profile.rate_limit_bucket(url)

        async with self._slots:
            await self.budget.wait_turn(bucket)
            started = time.perf_counter()
            try:
                response = await self.client.request(
                    method, url, content=content, headers=request_headers
                )
            except (httpx.TransportError, httpx.DecodingError) as exc:
                metrics.observe_idp_request(
                    self.profile.name, None, time.perf_counter() - started
                )
                raise transport_failure(exc) from None
        metrics.observe_idp_request(
            self.profile.name, response.status_code, time.perf_counter() - started
        )

        now = self.timing.clock()
        observed = self.profile.rate_limit(response, now)
        if observed is not None:
            self.budget.record(bucket, observed)
        if response.status_code == 429 or response.status_code >= 500:
            raise status_failure(self.profile, response, now)
        if not response.is_success:
            return response, None
        try:
            return response, response.json()
        except ValueError:
            raise TransientFailure(
                "the response body is not valid JSON (empty or truncated)"
            ) from None

    def same_origin(self, link: str, base: httpx.URL) -> httpx.URL:
        """Return a paging link to follow, moved onto ``base``'s origin.

        IdPs build next links from their public host name. Sending the
        credential to another host than the configured one would leak it past
        a proxy, so only the path and query of the link are kept.
        """
        target = httpx.URL(link)
        if (target.scheme, target.host, target.port) == (
            base.scheme,
            base.host,
            base.port,
        ):
            return target
        logger.debug("Moving %s paging link onto %s", self.profile.name, base.host)
        return base.copy_with(raw_path=target.raw_path)

    def list_body(self, body: Any, listing: str) -> list[Any]:
        """Return a JSON list body, or raise for any other shape."""
        if not isinstance(body, list):
            raise ConnectorUnavailableError(
                f"{self.profile.name} returned {type(body).__name__} instead of a "
                f"list for {listing}. Check base_url, and retry later if it persists."
            )
        return body

    async def check_access(
        self, checks: Iterable[tuple[httpx.URL, Mapping[str, str | int], str]]
    ) -> list[str]:
        """Send one small request per check; return a problem for each that fails.

        Each check is a URL, its query and the action it proves, such as "list
        groups". A rejected credential ends the checks, because it fails every
        other request too.
        """
        problems = []
        for url, params, action in checks:
            try:
                await self.get_json(url, params)
            except ConnectorError as exc:
                problems.append(f"cannot {action}: {exc}")
                if isinstance(exc, ConnectorConfigError):
                    break
        return problems


def only_match(
    matches: list[IdpGroup], reference: str, *, idp: str, noun: str, fix: str
) -> IdpGroup:
    """Return the one group that a name reference found.

    ``noun`` is the IdP's word for a group ("group", "role"). ``fix`` is the
    advice for a duplicate name, for example "map the group by its id instead".
    """
    if not matches:
        raise GroupNotFoundError(
            f"{idp} has no {noun} with id or name {reference!r}: fix the mapping "
            f"or the {noun} in {idp}"
        )
    if len(matches) > 1:
        ids = ", ".join(group.id for group in matches)
        raise GroupNotFoundError(
            f"{idp} has {len(matches)} {noun}s named {reference!r} ({ids}): {fix}"
        )
    return matches[0]
